"""Stage 20, selection: eligible comuni, a stratified proposal of pilots, matched
comparison comuni with a balance table, power and minimum detectable effect."""
