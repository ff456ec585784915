// The Posix module. See ../shared/DESIGN.md section 3.
