// The `jetstream` settings: absent means off, a partial section keeps the defaults, and
// each bad value is refused at load naming its key (a worker must not start consuming
// with a typo in its consumer name).
import Foundation
import TestSupport
import Testing
import Worker

struct WorkerConfigJetStreamTests {
    private func file(_ text: String) throws -> String {
        let url = try Fixtures.temporaryDirectory("config-js").appendingPathComponent("worker.json")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test func offUntilServersAreGiven() throws {
        #expect(try WorkerConfig.load(file("{}")).jetstream.enabled == false)
        let c = try WorkerConfig.load(file(#"{"jetstream": {"servers": ["nats://a:4222", "b"], "durable": "w7", "user": "u", "password": "p"}}"#))
        #expect(c.jetstream.enabled && c.jetstream.durable == "w7" && c.jetstream.stream == "facts" && c.jetstream.batch == 256)
        #expect(try c.jetstream.addresses().map(\.port) == [4222, 4222])
        #expect(c.jetstream.credentials.user == "u" && c.jetstream.credentials.password == "p")
        let n = try WorkerConfig.load(file(#"{"jetstream": {"servers": ["a"], "nkeySeedFile": "/etc/recipe/nats-user.nk"}}"#))
        #expect(n.jetstream.nkeySeedFile == "/etc/recipe/nats-user.nk")
    }

    @Test(arguments: [
        (#"{"jetstream": {"servers": ["tls://a:4222"]}}"#, "jetstream.servers"),
        (#"{"jetstream": {"servers": ["a"], "durable": "w.1"}}"#, "jetstream.durable"),
        (#"{"jetstream": {"servers": ["a"], "stream": "my stream"}}"#, "jetstream.stream"),
        (#"{"jetstream": {"servers": ["a"], "password": "p"}}"#, "jetstream.password"),
        (#"{"jetstream": {"servers": ["a"], "batch": 0}}"#, "jetstream.batch"),
        (#"{"jetstream": {"servers": ["a"], "durabel": "x"}}"#, "jetstream.durabel"),
        (#"{"jetstream": {"servers": ["a"], "user": "u", "nkeySeedFile": "/k.nk"}}"#, "jetstream.nkeySeedFile"),
        (#"{"jetstream": {"servers": ["a"], "nkeySeedFile": ""}}"#, "jetstream.nkeySeedFile"),
    ])
    func badSettingsAreRefusedByKey(_ text: String, _ key: String) throws {
        let path = try file(text)
        do {
            _ = try WorkerConfig.load(path)
            Issue.record("accepted \(text)")
        } catch let WorkerConfigError.invalid(_, k, _) {
            #expect(k == key)
        }
    }
}
