// The Tokenizers module. See ../shared/DESIGN.md section 3.
