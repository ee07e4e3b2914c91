// Plain Java, no Android dependency: the tokenizer, manifest reader, bucket choice and post-processing.
// The same sources are compiled with javac and run on the JVM by tests/test_android_java.py.
plugins {
    `java-library`
}

java {
    // Java 8 APIs only, so every minSdk-24 phone has them (no List.of, no java.nio.file).
    sourceCompatibility = JavaVersion.VERSION_1_8
    targetCompatibility = JavaVersion.VERSION_1_8
}

tasks.withType<JavaCompile>().configureEach {
    options.encoding = "UTF-8"
}

// The tests are a dependency-free runner (prints "N passed, N failed"), not JUnit:
//   ./gradlew :core:jvmChecks                      self-contained checks
//   ./gradlew :core:jvmChecks --args=cases.json    plus a bundle's cases (see tests/test_android_java.py)
tasks.register<JavaExec>("jvmChecks") {
    group = "verification"
    description = "Runs the core's JVM checks"
    classpath = sourceSets["test"].runtimeClasspath
    mainClass.set("dev.edgepack.core.CoreTests")
}
