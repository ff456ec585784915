// Encoder features of many texts, computed once in batches and kept on disk. The knowledge
// encoder is frozen during training, so the [pooler, mean, max, min] features of every
// training text are a pure function of (encoder, text): caching them turns the encoder's
// cost into a one-time cost per data set.
//
// File: "RCPFEAT1", u32 F, u32 count, u32 key (CRC-32C of the encoder fingerprint and the
// texts), count × F little-endian f16, u32 CRC-32C of everything before it.
import Foundation
import Posix
import Recipe

public enum FeatureCache {
    static let magic = Array("RCPFEAT1".utf8)

    /// Features of the distinct `texts`, from `directory` when a matching cache file is
    /// there, else computed with `encode` in batches of `batch` (reporting `progress(done,
    /// total)`) and stored there (when `directory` is given).
    public static func table(texts allTexts: [String], width: Int, encoderFingerprint: String, directory: URL?, batch: Int = 256,
                             progress: (Int, Int) -> Void = { _, _ in },
                             encode: ([String]) throws -> [[Float]]) throws -> FeatureTable {
        var seen = Set<String>()
        let texts = allTexts.filter { seen.insert($0).inserted }
        var keyBytes = Array(encoderFingerprint.utf8)
        for t in texts { keyBytes.append(0); keyBytes += t.utf8 }
        let key = CRC32C.checksum(keyBytes)
        let file = directory?.appendingPathComponent(String(format: "features-%08x-%d.bin", key, texts.count)).path

        if let file, let cached = try? read(file, width: width, count: texts.count, key: key) {
            progress(texts.count, texts.count)
            return FeatureTable(width: width, texts: texts, features: cached)
        }
        var features = [Float]()
        features.reserveCapacity(texts.count * width)
        var done = 0
        while done < texts.count {
            let chunk = Array(texts[done..<min(texts.count, done + batch)])
            for f in try encode(chunk) {
                guard f.count == width else {
                    throw RecipeError.invalidArgument("encoder returned \(f.count) features, expected \(width)")
                }
                features += f
            }
            done += chunk.count
            progress(done, texts.count)
        }
        if let file, let directory {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try write(file, features: features, width: width, count: texts.count, key: key)
        }
        return FeatureTable(width: width, texts: texts, features: features)
    }

    static func write(_ path: String, features: [Float], width: Int, count: Int, key: UInt32) throws {
        var out = magic
        out.reserveCapacity(20 + features.count * 2 + 4)
        for v in [UInt32(width), UInt32(count), key] { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        for f in features { withUnsafeBytes(of: Float16(f).bitPattern.littleEndian) { out += $0 } }
        withUnsafeBytes(of: CRC32C.checksum(out).littleEndian) { out += $0 }
        try FileSystem.atomicReplace(path, with: out)
    }

    /// The cached features, or nil when the file is absent, damaged or for other texts.
    static func read(_ path: String, width: Int, count: Int, key: UInt32) throws -> [Float]? {
        guard FileSystem.exists(path) else { return nil }
        let b = try FileSystem.readFile(path)
        guard b.count == 20 + width * count * 2 + 4, Array(b[0..<8]) == magic else { return nil }
        return b.withUnsafeBytes { raw -> [Float]? in
            func u32(_ o: Int) -> UInt32 { raw.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian }
            guard u32(8) == width, u32(12) == count, u32(16) == key,
                  u32(b.count - 4) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(b.count - 4)])) else { return nil }
            return (0..<(width * count)).map {
                Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 20 + 2 * $0, as: UInt16.self).littleEndian))
            }
        }
    }
}
