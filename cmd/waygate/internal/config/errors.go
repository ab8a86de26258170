package config

import (
	"strconv"
	"strings"
)

// maxProblems bounds how many problems one *Error reports; a file with more
// gets a final "too many errors" entry.
const maxProblems = 20

// Problem is one thing wrong with a configuration.
type Problem struct {
	// File is the name given to Parse or the path given to Load; empty when
	// the problem was found by Validate on a Config built in code.
	File string
	// Line and Column locate the problem in File, both 1-based; 0 means
	// unknown (always 0 from Validate).
	Line, Column int
	// Path is the dotted key path of the offending value, such as
	// "proxy.allow_clients[2]"; empty for problems with the document as a
	// whole.
	Path string
	// Msg says what is wrong, without the location.
	Msg string
}

// String formats p as "file:line:col: path: msg", leaving out the parts that
// are empty or zero.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
			if p.Column > 0 {
				b.WriteByte(':')
				b.WriteString(strconv.Itoa(p.Column))
			}
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is the error returned by Parse, Load and Validate when the
// configuration is invalid. It lists every problem found (up to a limit), in
// file order. A nil *Error or one with no Problems is never returned as an
// error.
type Error struct {
	Problems []Problem
}

// Error joins the problems, one per line.
func (e *Error) Error() string {
	if e == nil || len(e.Problems) == 0 {
		return "invalid configuration"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
