// Package config loads, defaults and validates the Waygate configuration file.
// Parse and Load read a strict YAML document (unknown keys, wrong types and bad
// values are all errors, reported together with file and line as an *Error);
// keys the file leaves out take the values of Default, and DefaultYAML is the
// commented reference file listing every key with its default.
package config
