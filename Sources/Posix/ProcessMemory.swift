// Giving freed heap memory back to the system. glibc keeps what a request freed in its
// arenas (each client thread may have its own) for reuse, so a process that once served one
// huge request keeps that resident set for good; `malloc_trim(0)` releases every whole free
// page of every arena (madvise(MADV_DONTNEED)), not only the top of the main heap.
import Glibc

public enum ProcessMemory {
    /// `malloc_trim(0)`: returns whether any memory was released. A walk of the arenas
    /// (milliseconds for a few hundred MB), so callers use it after unusually large work only.
    @discardableResult
    public static func returnFreePages() -> Bool { c_malloc_trim(0) == 1 }
}

// malloc.h is not part of the Glibc module map.
@_silgen_name("malloc_trim")
private func c_malloc_trim(_ pad: Int) -> Int32
