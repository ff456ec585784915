// The Worker module. See ../shared/DESIGN.md section 3.
