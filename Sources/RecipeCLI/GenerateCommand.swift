// `recipe generate`: greedy completion with the LLM, streamed to stdout.
import Foundation
import Kernels
import Models
import Parallelism
import Tokenizers

enum GenerateCommand: Subcommand {
    static let name = "generate"
    static let summary = "complete a prompt with the LLM (greedy, streamed)"
    static let help = """
    usage: recipe generate PROMPT... [--max-tokens N] [--chat] [--system TEXT] [--ignore-eos] [--json]

    Greedy decoding from the raw PROMPT (or standard input when PROMPT is -). With --chat the
    prompt is a user message rendered with the model's chat template (SmolLM2's ChatML with
    its default system prompt). Text is streamed to stdout as it is generated; generation
    stops at the end-of-text or end-of-turn token unless --ignore-eos is given.

      --max-tokens N   tokens to generate (default 64)
      --chat           wrap PROMPT as a chat user message and add the assistant prompt
      --system TEXT    system message for --chat (default: the template's own)
      --ignore-eos     keep generating past end-of-text / end-of-turn tokens
      --gguf FILE      another Llama-family GGUF file instead of the default model
      --json           print {"prompt_ids", "ids", "text", ...} on one line at the end
    \(modelsOptionHelp)
    \(threadsOptionHelp)
    """
    static let valued: Set<String> = ["max-tokens", "system", "gguf", "models", "threads"]

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let json = args.flag("json"), chat = args.flag("chat"), ignoreEOS = args.flag("ignore-eos")
        let maxTokens = try args.int("max-tokens", default: 64)
        let system = args.string("system")
        let paths = args.modelPaths()
        let gguf = args.string("gguf")
        try applyThreads(&args)
        try args.rejectUnknown()
        guard maxTokens > 0 else { throw UsageError("--max-tokens must be positive") }
        if system != nil && !chat { throw UsageError("--system needs --chat") }
        let prompt = try args.text("PROMPT")

        let loadStart = Date()
        let lm = try LanguageModel(path: gguf ?? ModelPaths.require(paths.llm).path)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        var text = prompt
        if chat {
            var messages: [ChatTemplate.Message] = []
            if let system { messages.append(.system(system)) }
            messages.append(.user(prompt))
            text = try lm.tokenizer.chatTemplate().render(messages, addGenerationPrompt: true)
        }
        let promptIDs = lm.tokenizer.encode(text)
        guard !promptIDs.isEmpty else { throw UsageError("the prompt is empty") }

        var decoder = lm.tokenizer.streamingDecoder(skipSpecial: chat)
        var streamed = ""
        let start = Date()
        var firstToken: Date?
        let ids = try lm.llama.generate(LlamaSequence(tokens: promptIDs), maxTokens: maxTokens,
                                        stopTokens: ignoreEOS ? [] : lm.stopTokens) { id in
            if firstToken == nil { firstToken = Date() }
            if let piece = try? decoder.append(id), !json {
                Console.out(piece)
                streamed += piece
            }
            return true
        }
        let end = Date()
        let tail = decoder.finish()
        if !json {
            print(tail)
            let prefillSeconds = (firstToken ?? end).timeIntervalSince(start)
            let decodeSeconds = end.timeIntervalSince(firstToken ?? end)
            Console.note(String(format: "[%d prompt tokens, %d generated; load %.0f ms, prefill %.0f ms, decode %.1f tokens/s]",
                                promptIDs.count, ids.count, loadSeconds * 1000, prefillSeconds * 1000,
                                ids.count > 1 ? Double(ids.count - 1) / max(decodeSeconds, 1e-9) : 0))
        } else {
            Console.json([
                "prompt_ids": promptIDs, "ids": ids,
                "text": try lm.tokenizer.decode(ids, skipSpecial: chat),
                "load_ms": Int(loadSeconds * 1000), "total_ms": Int(end.timeIntervalSince(start) * 1000),
            ])
        }
        return .ok
    }
}

/// `--threads N`: sets `Threads.count`, which every parallel loop splits its work by
/// (kernels, key search, the quantized-key build, dequantization; OpenBLAS through
/// `BLASThreads`).
func applyThreads(_ args: inout Arguments) throws {
    let n = try args.int("threads", default: 0)
    if n < 0 { throw UsageError("--threads must be positive") }
    if n > 0 { Threads.set(n) }
}
