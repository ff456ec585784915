// swift-tools-version:6.0
// RECIPE lifelong knowledge editing as a streaming worker. No package dependencies:
// the toolchain (Foundation, Dispatch, Glibc, Swift Testing) plus OpenBLAS as a system library.
import PackageDescription
import Foundation

// Numeric kernels are compiled for the build machine's CPU (AVX2/AVX-512 FMA), as
// llama.cpp does with GGML_NATIVE. Set RECIPE_TARGET_CPU=x86-64 (or another LLVM CPU name)
// to build a portable binary; RECIPE_TARGET_CPU=none passes no flag at all.
let targetCPU = ProcessInfo.processInfo.environment["RECIPE_TARGET_CPU"] ?? "native"
let cpuFlags: [SwiftSetting] = targetCPU == "none" ? [] : [.unsafeFlags(["-target-cpu", targetCPU])]

let package = Package(
    name: "recipe",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "recipe", targets: ["RecipeCLI"]),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Threads, work splitting and the SIMD dot under every parallel loop; depends on nothing.
        .target(name: "Parallelism", swiftSettings: cpuFlags),
        .target(name: "Kernels", dependencies: ["Parallelism", "COpenBLAS"], swiftSettings: cpuFlags),
        .target(name: "WeightFormats", dependencies: ["Parallelism"], swiftSettings: cpuFlags),
        .target(name: "Tokenizers", dependencies: ["WeightFormats"]),
        .target(name: "Models", dependencies: ["Kernels", "Parallelism", "WeightFormats", "Tokenizers"], swiftSettings: cpuFlags),
        // The editor as the worker runs it: heads, prompts, refinement at ingestion, retrieval,
        // answers. Its file formats sit together in Sources/Recipe/Formats (the checkpoint, the
        // prompt state store, the model fingerprints both are bound to): the files `serve` and
        // `ingest` read and write, beside the editor that defines their contents. Training's
        // feature cache is a scratch file of the train and eval commands and stays with training.
        .target(name: "Recipe", dependencies: ["Models", "Kernels", "Parallelism", "Tokenizers", "Storage", "Posix"], swiftSettings: cpuFlags),
        // Training the editor: the trainer and its losses, the data sets (EditDataset) and the
        // training set built from them, the feature cache.
        .target(name: "RecipeTraining", dependencies: ["Recipe", "Models", "Kernels", "Storage", "Posix"], swiftSettings: cpuFlags),
        // The evaluation harness (`recipe eval`). It depends on RecipeTraining for the data it
        // measures on: the samples EditDataset reads (EditSample) and, for retrieval, a
        // TrainingSet (RetrievalEvaluation reads its examples and query texts, so a training
        // run's retrieval report and `recipe eval --retrieval` count the same queries); the
        // trainer depends on those types, so they cannot live here.
        .target(name: "RecipeEvaluation", dependencies: ["Recipe", "RecipeTraining", "Models", "Kernels", "Storage"], swiftSettings: cpuFlags),
        .target(name: "Posix"),
        .target(name: "NATS", dependencies: ["Posix"]),
        .target(name: "Storage", dependencies: ["Posix", "Parallelism"], swiftSettings: cpuFlags),
        // The socket protocol's Codable request and reply types, shared by the worker and its
        // clients, and the socket client: what a client links, without the models, the editor
        // or the repository.
        .target(name: "WorkerAPI", dependencies: ["Posix"]),
        // The worker serves the editor and nothing more: never RecipeTraining or RecipeEvaluation.
        .target(name: "Worker", dependencies: ["WorkerAPI", "Storage", "Recipe", "Models", "Posix", "NATS"], exclude: ["Protocol.md", "Operations.md"]),
        .executableTarget(
            name: "RecipeCLI",
            dependencies: ["Worker", "WorkerAPI", "Recipe", "RecipeTraining", "RecipeEvaluation", "Models", "Tokenizers", "WeightFormats", "Kernels", "Parallelism", "Storage", "Posix", "NATS"],
            // The editor trained for the default models (Pipelines/train-editor.sh), found by
            // every command that needs one.
            resources: [.copy("Resources/editor-smollm2-135m.rcpe")],
            swiftSettings: cpuFlags
        ),

        .target(name: "TestSupport", dependencies: ["Posix"], path: "Tests/TestSupport"),
        .testTarget(name: "ParallelismTests", dependencies: ["Parallelism", "TestSupport"], swiftSettings: cpuFlags),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"], swiftSettings: cpuFlags),
        .testTarget(name: "WeightFormatsTests", dependencies: ["WeightFormats", "Parallelism", "TestSupport"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "WeightFormats", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Kernels", "Parallelism", "TestSupport"], swiftSettings: cpuFlags),
        // The editor's tests follow its targets; PromptRefinerTests reads its facts with
        // RecipeTraining's EditDataset. RecipeTestSupport holds the fixtures the three share.
        .target(name: "RecipeTestSupport", dependencies: ["Recipe", "TestSupport"], path: "Tests/RecipeTestSupport"),
        .testTarget(name: "RecipeTests", dependencies: ["Recipe", "RecipeTraining", "Models", "Kernels", "WeightFormats", "Parallelism", "Storage", "Posix", "TestSupport", "RecipeTestSupport"]),
        .testTarget(name: "RecipeTrainingTests", dependencies: ["RecipeTraining", "Recipe", "Models", "TestSupport", "RecipeTestSupport"]),
        .testTarget(name: "RecipeEvaluationTests", dependencies: ["RecipeEvaluation", "RecipeTraining", "Recipe", "Models", "Storage", "TestSupport", "RecipeTestSupport"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "Parallelism", "Posix", "TestSupport"]),
        .testTarget(name: "WorkerAPITests", dependencies: ["WorkerAPI"], exclude: ["Fixtures"]),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "WorkerAPI", "Recipe", "RecipeTraining", "RecipeEvaluation", "Models", "Storage", "Posix", "NATS", "TestSupport"]),
        .testTarget(name: "NATSTests", dependencies: ["NATS", "Posix"]),
    ]
)
