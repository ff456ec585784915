// DURABILITY RULES OF THE KNOWLEDGE REPOSITORY
// ============================================
// These are the rules the code in this module follows, in order. "Acknowledged" means
// `Repository.commit` returned normally; an acknowledged fact is never lost by a crash
// (kill -9, power loss) at any point, because it is in the fsynced log and everything
// else is derived from the log.
//
// Files in the repository directory:
//   facts.log          append-only log of add / retract / supersede records (source of truth)
//   facts.log.*.archive  logs replaced by log compaction (history; never read again)
//   facts.log.*.damaged  damaged logs replaced by a salvage (kept byte for byte)
//   keys.<g>.f32       key matrix      [rows, R]    (memory mapped, derived)
//   prompts.<g>.f32    prompt matrix   [rows, P*C]  (memory mapped, derived)
//   rows.<g>.u64       row -> log sequence of the fact's add record (derived)
//   MANIFEST           generation g, encoder fingerprint and dimensions, row count, last
//                      applied log sequence, last time step (checksummed JSON)
//   LOCK               flock(LOCK_EX) held by the one writer
//   torn/              log tails cut by recovery and damaged ranges cut by a salvage, byte for byte
// In memory only: the int8 copy of the key rows for two-stage search (`QuantizedKeys`),
// built from the key matrix at open and with every new generation, extended at step 5.
//
// A time step (`commit`):
//   1. Plan the batch against the in-memory table (dedup, supersede, retract). No I/O.
//   2. Encode the new statements in one `encode` call. Failure: nothing written.
//   3. Grow the matrix files if needed: posix_fallocate + fdatasync + remap. Failure
//      (ENOSPC): nothing written, error thrown. Allocating up front means a full disk can
//      never turn into SIGBUS while writing through the mapping.
//   4. Append the records to facts.log (pwrite loop) and fsync(facts.log).
//      Write failure: the log is truncated back, nothing acknowledged, error thrown.
//      fsync failure: what reached the disk is unknown (fsyncgate), so the repository
//      refuses further commits (`needsReopen`); reopening recovers from what is on disk.
//      ==> ACKNOWLEDGEMENT POINT: from here the step is durable.
//   5. Write the new rows through the mappings, mark retracted/superseded rows dead.
//   6. msync(MS_SYNC) the rows written since the last successful msync (every step by
//      default; see the speed options below).
//   7. Only if 6 succeeded: replace MANIFEST (write MANIFEST.tmp, fsync, rename, fsync dir).
//      A failure in 6 or 7 is reported as a warning: the step is acknowledged (it is in
//      the log) and the manifest keeps pointing at older rows, so recovery re-derives them.
//   8. Publish the new snapshot to readers.
// A crash between 4 and 7 loses nothing: recovery re-encodes every live fact logged after
// the manifest's applied sequence. Rows below the manifest's row count are never written
// again within a generation, so a crash mid-step cannot damage rows the manifest vouches for.
//
// Compaction and rebuilds (new encoder fingerprint, lost or damaged matrix file, corrupt
// manifest) write generation g+1 into new files, msync + fsync them, fsync the directory,
// then replace MANIFEST (the commit point), then unlink generation g. A crash before the
// manifest replace leaves generation g in force (the new files are deleted at next open);
// after it, generation g+1. Readers holding a snapshot of g keep their mappings.
//
// Log compaction (`compactLog`) first compacts the matrices, msyncs + writes the manifest,
// then writes facts.log.tmp (the live facts' add records with their original sequences,
// plus a checkpoint record carrying the last sequence), fsyncs it, hard-links the old log
// to facts.log.<seq>.archive (kept), renames the new one over facts.log and fsyncs the
// directory. A crash leaves the old log or the new one; both describe the same live facts
// and the manifest's applied sequence is valid for both.
//
// Recovery at open:
//   - read the log up to the first frame that is short, fails its CRC, does not decode or
//     breaks the sequence (FactLogScan.swift), then look past it for an intact frame.
//     None (a torn append, never acknowledged): copy the rest into torn/ (temp + fsync +
//     rename + dir fsync), truncate the log there and fsync it; the cut is reported
//     (`OpenReport.tornTail`). Intact frames follow (damage to acknowledged records):
//     refuse to open (`StorageError.damagedLog`) and leave every file untouched. Intact
//     records are never cut. Salvage is the operator's decision (`Repository.repairLog`,
//     or `RepositoryOptions.salvageDamagedLog`): each damaged range is copied into torn/,
//     the damaged log is hard-linked to facts.log.<ms>.damaged, and a log of the intact
//     frames (byte for byte, sequences kept, so the gaps name what was lost) is written as
//     facts.log.tmp, fsynced and renamed over facts.log, then the directory is fsynced.
//     A row whose record is missing from the log is then dead; every other row is kept.
//   - verify MANIFEST (CRC, fingerprint, dimensions, applied sequence within the log) and
//     the matrix files (header, generation, size, row map consistent with the log). Any
//     mismatch rebuilds a new generation from the log (re-encoding every live fact).
//   - otherwise rewrite row 0 in place (msync) when it differs from the encoder's sentinel
//     (a damaged row, or an encoder whose query side changed: the fingerprint names only
//     what fact rows are made of); row 0 derives from the encoder alone, so a crash during
//     the rewrite is repaired the same way at the next open. Then encode the live facts
//     logged after the applied sequence, as a commit would.
//
// Speed options, and what a crash would lose with them:
//   - RepositoryOptions.syncMatricesEvery = N (default 1): steps 6 and 7 run every N
//     steps (and at flush() / close()). A crash loses no acknowledged fact; it costs
//     re-encoding the facts of up to N-1 steps at the next open.
//   - There is no option to skip the log fsync: that would lose acknowledged facts.
