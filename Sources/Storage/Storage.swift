// The Storage module. See ../shared/DESIGN.md section 3.
