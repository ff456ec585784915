// The editor's checkpoint file: small, self-describing, checksummed, and bound to the exact
// models it was trained for.
//
//   offset  size  field
//   0       8     magic "RCPECKPT"
//   8       4     format version (u32 LE) = 1
//   12      4     header length H (u32 LE, at most 1 MiB)
//   16      H     header, UTF-8 JSON: config, tensor table (name, shape, dtype; in
//                 `RecipeTensor` order, tensors added later and zero-size under the config
//                 may be absent), model fingerprints, training record, optional optimizer step
//   16+H    …     tensor data in table order, little-endian f32 or f16, no padding
//   end-4   4     CRC-32C of every byte before it (u32 LE)
//
// Shipped checkpoints store f16 (half the size; inference differences far below the
// retrieval margins); training checkpoints store f32 plus Adam's moments so a resumed run
// continues exactly.
import Foundation
import Posix

public struct RecipeCheckpoint: Sendable {
    public static let magic = Array("RCPECKPT".utf8)
    public static let version: UInt32 = 1
    static let maxHeader = 1 << 20

    public enum DType: String, Codable, Sendable { case f32, f16 }

    /// Fingerprints of the models the editor was trained with (`ModelFingerprint`).
    public struct Fingerprints: Codable, Sendable, Equatable {
        public var llm: String
        public var encoder: String
        public init(llm: String, encoder: String) { self.llm = llm; self.encoder = encoder }
    }

    struct TensorEntry: Codable { var name: String; var shape: [Int]; var dtype: DType }

    struct Header: Codable {
        var config: RecipeConfig
        var tensors: [TensorEntry]
        var fingerprints: Fingerprints
        var training: [String: String]
        var optimizerStep: Int?
    }

    public var parameters: RecipeParameters
    public var fingerprints: Fingerprints
    /// How the checkpoint was made (command, data, seed, steps, time, final losses).
    public var training: [String: String]
    /// Adam state for resuming (training checkpoints only).
    public var optimizer: (step: Int, m: [Float], v: [Float])?

    public init(parameters: RecipeParameters, fingerprints: Fingerprints, training: [String: String] = [:],
                optimizer: (step: Int, m: [Float], v: [Float])? = nil) {
        self.parameters = parameters
        self.fingerprints = fingerprints
        self.training = training
        self.optimizer = optimizer
    }

    // MARK: writing

    /// The file's bytes.
    public func encoded(dtype: DType) throws -> [UInt8] {
        let config = parameters.config
        var entries = RecipeTensor.allCases.map { TensorEntry(name: $0.name, shape: $0.shape(config), dtype: dtype) }
        if let optimizer {
            entries.append(TensorEntry(name: "adam.m", shape: [optimizer.m.count], dtype: .f32))
            entries.append(TensorEntry(name: "adam.v", shape: [optimizer.v.count], dtype: .f32))
        }
        let header = Header(config: config, tensors: entries, fingerprints: fingerprints, training: training,
                            optimizerStep: optimizer?.step)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = Array(try encoder.encode(header))
        var out = Self.magic
        out.reserveCapacity(16 + json.count + parameters.count * 4 + 4)
        append(&out, Self.version)
        append(&out, UInt32(json.count))
        out += json
        for t in RecipeTensor.allCases {
            append(&out, parameters[t], dtype: dtype)
        }
        if let optimizer {
            optimizer.m.withUnsafeBufferPointer { append(&out, $0, dtype: .f32) }
            optimizer.v.withUnsafeBufferPointer { append(&out, $0, dtype: .f32) }
        }
        append(&out, CRC32C.checksum(out))
        return out
    }

    /// Writes atomically (temp file, fsync, rename, directory fsync).
    public func write(to path: String, dtype: DType) throws {
        try FileSystem.atomicReplace(path, with: encoded(dtype: dtype))
    }

    private func append(_ out: inout [UInt8], _ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }

    private func append<C: Collection>(_ out: inout [UInt8], _ values: C, dtype: DType) where C.Element == Float {
        switch dtype {
        case .f32: for v in values { append(&out, v.bitPattern) }
        case .f16:
            for v in values {
                withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { out += $0 }
            }
        }
    }

    // MARK: reading

    /// Reads and verifies a checkpoint. When `expecting` is given, refuses a checkpoint made
    /// for other models.
    public static func load(_ path: String, expecting: Fingerprints? = nil) throws -> RecipeCheckpoint {
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch {
            throw RecipeError.checkpoint(file: path, reason: "cannot read: \(error)")
        }
        return try decode(bytes, file: path, expecting: expecting)
    }

    public static func decode(_ bytes: [UInt8], file: String, expecting: Fingerprints? = nil) throws -> RecipeCheckpoint {
        func fail(_ reason: String) -> RecipeError { .checkpoint(file: file, reason: reason) }
        guard bytes.count >= 20, Array(bytes[0..<8]) == magic else {
            throw fail("not a RECIPE checkpoint (bad magic or shorter than 20 bytes)")
        }
        let stored = u32(bytes, bytes.count - 4)
        let actual = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 4)])) }
        guard stored == actual else {
            throw fail(String(format: "checksum mismatch (stored %08x, computed %08x): the file is damaged or truncated", stored, actual))
        }
        let version = u32(bytes, 8)
        guard version == Self.version else { throw fail("format version \(version), this build reads version \(Self.version)") }
        let h = Int(u32(bytes, 12))
        guard h <= maxHeader, 16 + h <= bytes.count - 4 else { throw fail("header length \(h) is out of range") }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(bytes[16..<(16 + h)])) } catch {
            throw fail("header is not valid: \(error)")
        }
        try header.config.validate()
        let params = RecipeParameters(config: header.config)
        var offset = 16 + h
        var extra: [String: [Float]] = [:]
        // The table lists the tensors in `RecipeTensor` order. A checkpoint written before a
        // tensor existed ends its list early: that is accepted only for tensors that are
        // zero-size under its config (options it cannot have had on).
        let expectedNames = RecipeTensor.allCases.map(\.name)
        let listed = zip(header.tensors, expectedNames).prefix { $0.name == $1 }.count
        let missing = RecipeTensor.allCases[listed...].filter { $0.shape(header.config).reduce(1, *) != 0 }
        guard missing.isEmpty else {
            throw fail("tensor table does not list \(expectedNames.joined(separator: ", ")) in order "
                       + "(\(missing.map(\.name).joined(separator: ", ")) missing or out of place)")
        }
        if let twice = header.tensors[listed...].first(where: { expectedNames.contains($0.name) }) {
            throw fail("tensor '\(twice.name)' is listed out of order or twice")
        }
        for (i, entry) in header.tensors.enumerated() {
            let count = entry.shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
            let width = entry.dtype == .f32 ? 4 : 2
            guard entry.shape.allSatisfy({ $0 >= 0 }), count < Int.max / 4, offset + count * width <= bytes.count - 4 else {
                throw fail("tensor '\(entry.name)' \(entry.shape) runs past the end of the file")
            }
            if i < listed {
                let t = RecipeTensor.allCases[i]
                guard entry.shape == t.shape(header.config) else {
                    throw fail("tensor '\(entry.name)' has shape \(entry.shape), expected \(t.shape(header.config))")
                }
                read(bytes, offset, count, entry.dtype, into: params[t].baseAddress!)
            } else {
                var values = [Float](repeating: 0, count: count)
                values.withUnsafeMutableBufferPointer { read(bytes, offset, count, entry.dtype, into: $0.baseAddress!) }
                extra[entry.name] = values
            }
            offset += count * width
        }
        guard offset == bytes.count - 4 else { throw fail("\(bytes.count - 4 - offset) unexpected bytes after the tensors") }
        if let expecting, expecting != header.fingerprints {
            throw fail("made for other models (checkpoint: llm \(header.fingerprints.llm), encoder \(header.fingerprints.encoder); "
                       + "loaded: llm \(expecting.llm), encoder \(expecting.encoder)); train one with `recipe train` for these models")
        }
        var optimizer: (step: Int, m: [Float], v: [Float])?
        if let step = header.optimizerStep, let m = extra["adam.m"], let v = extra["adam.v"] {
            guard m.count == params.count, v.count == params.count else { throw fail("optimizer state has the wrong size") }
            optimizer = (step, m, v)
        }
        return RecipeCheckpoint(parameters: params, fingerprints: header.fingerprints, training: header.training, optimizer: optimizer)
    }

    private static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    private static func read(_ b: [UInt8], _ offset: Int, _ count: Int, _ dtype: DType, into out: UnsafeMutablePointer<Float>) {
        b.withUnsafeBytes { raw in
            switch dtype {
            case .f32:
                for i in 0..<count { out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: offset + 4 * i, as: UInt32.self).littleEndian) }
            case .f16:
                for i in 0..<count { out[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: offset + 2 * i, as: UInt16.self).littleEndian)) }
            }
        }
    }
}
