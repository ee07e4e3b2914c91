plugins {
    id("com.android.application")
}

android {
    namespace = "dev.edgepack.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.edgepack.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk {
            // The bundle targets android-arm64; shipping other ABIs of LiteRT only grows the APK.
            abiFilters += "arm64-v8a"
        }
    }

    androidResources {
        // .tflite files stay uncompressed in the APK so reading them is a plain copy, not an inflate.
        noCompress += "tflite"
        // The bundle also carries model.onnx, the Python runtime and the build reports; the app reads only
        // edgepack.json, vocab.txt and model.seq*.tflite, so the rest stays out of the APK.
        // (aapt's default pattern, plus the last three entries.)
        ignoreAssetsPattern = "!.svn:!.git:!.ds_store:!*.scc:.*:<dir>_*:!CVS:!thumbs.db:!picasa.ini:!*~:!*.onnx:!*.py:!report.*"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_1_8
        targetCompatibility = JavaVersion.VERSION_1_8
    }
}

dependencies {
    implementation(project(":core"))
    // LiteRT (formerly TensorFlow Lite) Interpreter API, with XNNPACK built in.
    // org.tensorflow:tensorflow-lite:2.16.1 is the drop-in alternative (same org.tensorflow.lite package).
    implementation("com.google.ai.edge.litert:litert:1.4.1")
}
