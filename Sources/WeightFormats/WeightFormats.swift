// The WeightFormats module. See ../shared/DESIGN.md section 3.
