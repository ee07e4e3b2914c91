package dev.edgepack.core;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** sha256 of the exact bytes the app is about to use, compared with the manifest's record. */
public final class Sha256 {
    private Sha256() {}

    public static String hex(byte[] data) {
        MessageDigest md = digest();
        md.update(data);
        return toHex(md.digest());
    }

    public static String hex(InputStream in) throws IOException {
        MessageDigest md = digest();
        byte[] block = new byte[1 << 16];
        for (int n; (n = in.read(block)) > 0; ) md.update(block, 0, n);
        return toHex(md.digest());
    }

    /** Throws unless {@code data} hashes to {@code expectedHex}; {@code name} is for the message. */
    public static void verify(String name, byte[] data, String expectedHex) throws BundleException.Integrity {
        String got = hex(data);
        if (expectedHex == null || !got.equalsIgnoreCase(expectedHex)) {
            throw new BundleException.Integrity(name + ": sha256 " + got + " differs from the manifest's "
                    + expectedHex + " (file changed after the build); refusing to load it");
        }
    }

    private static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required on every Java platform", e);
        }
    }

    private static String toHex(byte[] bytes) {
        StringBuilder sb = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) sb.append(Character.forDigit((b >> 4) & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
        return sb.toString();
    }
}
