package dev.edgepack.core;

/** A bundle the app must not run: unreadable manifest, newer format, changed file, unsupported tokenizer. */
public class BundleException extends Exception {
    private static final long serialVersionUID = 1L;

    public BundleException(String message) {
        super(message);
    }

    public BundleException(String message, Throwable cause) {
        super(message, cause);
    }

    /** A file's bytes differ from the sha256 the build recorded: the app must refuse to load it. */
    public static final class Integrity extends BundleException {
        private static final long serialVersionUID = 1L;

        public Integrity(String message) {
            super(message);
        }
    }
}
