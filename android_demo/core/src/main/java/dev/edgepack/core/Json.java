package dev.edgepack.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small strict JSON reader (RFC 8259): objects become {@code Map<String, Object>} (insertion order kept),
 * arrays {@code List<Object>}, numbers {@code Double} (or {@code Long} when integral and written without
 * fraction or exponent), plus String, Boolean and null.
 *
 * <p>Written here so the core module has no dependency at all: the manifest is small and trusted only after
 * it parses, and org.json is Android-only (a stub on the JVM), so tests could not use it.
 */
public final class Json {
    private final String s;
    private int pos;

    private Json(String s) {
        this.s = s;
    }

    public static Object parse(String text) {
        Json p = new Json(text);
        p.skipWs();
        Object v = p.value(0);
        p.skipWs();
        if (p.pos != p.s.length()) throw p.error("trailing characters");
        return v;
    }

    // Deep nesting is an attack on the stack, never a real manifest.
    private static final int MAX_DEPTH = 64;

    private Object value(int depth) {
        if (depth > MAX_DEPTH) throw error("nesting deeper than " + MAX_DEPTH);
        if (pos >= s.length()) throw error("unexpected end of input");
        char c = s.charAt(pos);
        switch (c) {
            case '{': return object(depth);
            case '[': return array(depth);
            case '"': return string();
            case 't': literal("true"); return Boolean.TRUE;
            case 'f': literal("false"); return Boolean.FALSE;
            case 'n': literal("null"); return null;
            default:
                if (c == '-' || (c >= '0' && c <= '9')) return number();
                throw error("unexpected character '" + c + "'");
        }
    }

    private Map<String, Object> object(int depth) {
        Map<String, Object> out = new LinkedHashMap<>();
        pos++;
        skipWs();
        if (peek() == '}') { pos++; return out; }
        while (true) {
            skipWs();
            if (peek() != '"') throw error("expected a string key");
            String key = string();
            skipWs();
            expect(':');
            skipWs();
            out.put(key, value(depth + 1));
            skipWs();
            char c = next();
            if (c == '}') return out;
            if (c != ',') throw error("expected ',' or '}'");
        }
    }

    private List<Object> array(int depth) {
        List<Object> out = new ArrayList<>();
        pos++;
        skipWs();
        if (peek() == ']') { pos++; return out; }
        while (true) {
            skipWs();
            out.add(value(depth + 1));
            skipWs();
            char c = next();
            if (c == ']') return out;
            if (c != ',') throw error("expected ',' or ']'");
        }
    }

    private String string() {
        expect('"');
        StringBuilder sb = new StringBuilder();
        while (true) {
            char c = next();
            if (c == '"') return sb.toString();
            if (c < 0x20) throw error("raw control character in string");
            if (c != '\\') { sb.append(c); continue; }
            char e = next();
            switch (e) {
                case '"': sb.append('"'); break;
                case '\\': sb.append('\\'); break;
                case '/': sb.append('/'); break;
                case 'b': sb.append('\b'); break;
                case 'f': sb.append('\f'); break;
                case 'n': sb.append('\n'); break;
                case 'r': sb.append('\r'); break;
                case 't': sb.append('\t'); break;
                case 'u':
                    // Surrogate pairs arrive as two escapes; appending both UTF-16 units rebuilds the code point.
                    if (pos + 4 > s.length()) throw error("short \\u escape");
                    try {
                        sb.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
                    } catch (NumberFormatException ex) {
                        throw error("bad \\u escape");
                    }
                    pos += 4;
                    break;
                default: throw error("bad escape '\\" + e + "'");
            }
        }
    }

    private Object number() {
        int start = pos;
        if (peek() == '-') pos++;
        if (peek() == '0') pos++;
        else digits();
        boolean integral = true;
        if (peek() == '.') { pos++; digits(); integral = false; }
        if (peek() == 'e' || peek() == 'E') {
            pos++;
            if (peek() == '+' || peek() == '-') pos++;
            digits();
            integral = false;
        }
        String text = s.substring(start, pos);
        if (integral && text.length() < 19) return Long.parseLong(text);
        return Double.parseDouble(text);
    }

    private void digits() {
        int start = pos;
        while (pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9') pos++;
        if (pos == start) throw error("expected a digit");
    }

    private void literal(String word) {
        if (!s.startsWith(word, pos)) throw error("expected " + word);
        pos += word.length();
    }

    private void skipWs() {
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
            pos++;
        }
    }

    private char peek() {
        return pos < s.length() ? s.charAt(pos) : '\0';
    }

    private char next() {
        if (pos >= s.length()) throw error("unexpected end of input");
        return s.charAt(pos++);
    }

    private void expect(char c) {
        if (next() != c) { pos--; throw error("expected '" + c + "'"); }
    }

    private IllegalArgumentException error(String what) {
        return new IllegalArgumentException("JSON: " + what + " at offset " + pos);
    }

    // -- typed accessors, so callers read the manifest without casts everywhere --------------------

    @SuppressWarnings("unchecked")
    public static Map<String, Object> obj(Object o, String what) {
        if (o instanceof Map) return (Map<String, Object>) o;
        throw new IllegalArgumentException(what + ": expected a JSON object");
    }

    @SuppressWarnings("unchecked")
    public static List<Object> arr(Object o, String what) {
        if (o instanceof List) return (List<Object>) o;
        throw new IllegalArgumentException(what + ": expected a JSON array");
    }

    public static String str(Object o, String what) {
        if (o instanceof String) return (String) o;
        throw new IllegalArgumentException(what + ": expected a string");
    }

    public static long integer(Object o, String what) {
        if (o instanceof Long) return (Long) o;
        if (o instanceof Double && (Double) o == Math.rint((Double) o)) return (long) (double) (Double) o;
        throw new IllegalArgumentException(what + ": expected an integer");
    }

    public static double num(Object o, String what) {
        if (o instanceof Number) return ((Number) o).doubleValue();
        throw new IllegalArgumentException(what + ": expected a number");
    }

    public static boolean bool(Object o, boolean dflt) {
        return o instanceof Boolean ? (Boolean) o : dflt;
    }

    public static int[] ints(Object o, String what) {
        List<Object> a = arr(o, what);
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = (int) integer(a.get(i), what + "[" + i + "]");
        return out;
    }

    public static float[] floats(Object o, String what) {
        List<Object> a = arr(o, what);
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) num(a.get(i), what + "[" + i + "]");
        return out;
    }
}
