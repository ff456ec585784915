// The Recipe module. See ../shared/DESIGN.md section 3.
