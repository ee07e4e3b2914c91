// Versions are declared once here; modules apply the plugins without versions.
plugins {
    id("com.android.application") version "8.7.3" apply false
}
