// Typed metadata access. The throwing forms name the key and the expected against actual
// type, so a model loader can simply `try file.int("llama.block_count")`; the optional
// forms return nil for an absent key but still throw for a present key of the wrong type
// (a wrong type is a broken file, not a missing option).

extension GGUFFile {
    private func mismatch(_ key: String, _ expected: String, _ v: GGUFValue) -> WeightFormatError {
        .badMetadata(path: path, key: key, expected: expected, actual: v.typeName)
    }

    private func require(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw WeightFormatError.missingKey(path: path, key: key) }
        return v
    }

    /// A string value.
    public func string(_ key: String) throws -> String {
        let v = try require(key)
        guard let s = v.stringValue else { throw mismatch(key, "string", v) }
        return s
    }

    /// An integer of any GGUF integer type that fits in `Int`.
    public func int(_ key: String) throws -> Int {
        let v = try require(key)
        guard let i = v.intValue else {
            if v.type == .uint64 || v.type == .int64 { throw WeightFormatError.badMetadata(path: path, key: key,
                                                                                          expected: "an integer that fits in Int", actual: "\(v)") }
            throw mismatch(key, "an integer", v)
        }
        return i
    }

    /// A float32 or float64 value (integers are accepted too: some converters write them).
    public func float(_ key: String) throws -> Float {
        let v = try require(key)
        if let f = v.floatValue { return f }
        if let i = v.intValue { return Float(i) }
        throw mismatch(key, "a float", v)
    }

    public func bool(_ key: String) throws -> Bool {
        let v = try require(key)
        guard let b = v.boolValue else { throw mismatch(key, "bool", v) }
        return b
    }

    /// An array of strings.
    public func strings(_ key: String) throws -> [String] {
        let v = try require(key)
        guard let a = v.arrayValue?.strings else { throw mismatch(key, "array of string", v) }
        return a
    }

    /// An array of any integer type.
    public func ints(_ key: String) throws -> [Int] {
        let v = try require(key)
        guard let a = v.arrayValue?.ints else { throw mismatch(key, "array of integers", v) }
        return a
    }

    /// An array of float32 or float64.
    public func floats(_ key: String) throws -> [Float] {
        let v = try require(key)
        guard let a = v.arrayValue?.floats else { throw mismatch(key, "array of floats", v) }
        return a
    }

    public func optionalString(_ key: String) throws -> String? { metadata[key] == nil ? nil : try string(key) }
    public func optionalInt(_ key: String) throws -> Int? { metadata[key] == nil ? nil : try int(key) }
    public func optionalFloat(_ key: String) throws -> Float? { metadata[key] == nil ? nil : try float(key) }
    public func optionalBool(_ key: String) throws -> Bool? { metadata[key] == nil ? nil : try bool(key) }
    public func optionalStrings(_ key: String) throws -> [String]? { metadata[key] == nil ? nil : try strings(key) }
    public func optionalInts(_ key: String) throws -> [Int]? { metadata[key] == nil ? nil : try ints(key) }
    public func optionalFloats(_ key: String) throws -> [Float]? { metadata[key] == nil ? nil : try floats(key) }

    /// `general.architecture` (e.g. "llama"), the prefix of the model's hyper-parameter keys.
    public func architecture() throws -> String { try string("general.architecture") }
}
