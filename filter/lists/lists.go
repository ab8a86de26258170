package lists

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Kind is the kind of a list entry. The zero Kind is not a valid kind; Parse
// never emits it.
type Kind uint8

// Kinds of entries.
const (
	// KindDomain is a host name; it matches the name and all its subdomains.
	KindDomain Kind = iota + 1
	// KindURL is a host/path prefix from a squidGuard urls file.
	KindURL
	// KindExpression is a regular expression over the URL.
	KindExpression
	// KindIP is a single IP address.
	KindIP
	// KindCIDR is an IP prefix ("10.0.0.0/8").
	KindCIDR
)

// String returns "domain", "url", "expression", "ip" or "cidr", or
// "Kind(n)" for anything else (including the zero Kind).
func (k Kind) String() string {
	switch k {
	case KindDomain:
		return "domain"
	case KindURL:
		return "url"
	case KindExpression:
		return "expression"
	case KindIP:
		return "ip"
	case KindCIDR:
		return "cidr"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Entry is one usable value of a list. A hosts line naming several hosts
// yields one Entry per name, all with the same Line.
//
// Value is canonical, so that equal values mean equal entries:
//   - KindDomain: lower-case ASCII (IDNs converted to punycode A-labels),
//     without a leading "*." or "." and without a trailing dot, exactly as
//     hostname.Parse returns it;
//   - KindIP: netip.Addr.String() of the address as hostname.Parse reads it
//     ("127.1" is "127.0.0.1", IPv4-mapped IPv6 is unmapped);
//   - KindCIDR: netip.Prefix.Masked().String();
//   - KindURL: canonical host (IPv6 in brackets, port dropped) followed by
//     the path starting with "/", ASCII-lowercased, query kept, fragment and
//     scheme removed: "example.com/a/b?x=1";
//   - KindExpression: the regular expression as written.
//
// The zero Entry is not a valid entry; Parse never emits it.
type Entry struct {
	Kind  Kind
	Value string
	Line  int // 1-based line number in the source
}

// Format is the syntax of a list file. The zero Format is not valid: Parse
// rejects it.
type Format uint8

// Formats of list files.
const (
	// FormatDomains is one domain per line (squidGuard `domains`, plain
	// lists). A value may be written "example.com", ".example.com",
	// "*.example.com" or "example.com."; IP addresses (any numeric spelling
	// hostname.Parse knows) and CIDR prefixes are accepted too. Hosts-file
	// lines ("0.0.0.0 name") and Adblock "||name^" lines are recognised per
	// line, so mixed lists work; there "!" comments and "[Adblock ...]"
	// headers are skipped, and exceptions ("@@") and rules with options are
	// unsupported. Single-label names ("com", "lan") are accepted, for
	// blocking a whole TLD; a single label that is a number ("12345",
	// "0x7f000001", an IPv4 address to hostname.Parse) is malformed.
	FormatDomains Format = iota + 1
	// FormatURLs is a squidGuard `urls` file: "host/path" per line; an
	// "http://" or "https://" prefix, a ":port" and a "#fragment" are
	// tolerated and dropped.
	FormatURLs
	// FormatExpressions is a squidGuard `expressions` file: one regular
	// expression per line, validated with regexp.Compile (Go RE2 syntax,
	// which accepts most POSIX ERE).
	FormatExpressions
	// FormatHosts is a hosts file: "address name [name...]". Local names
	// (localhost, broadcasthost, ip6-localhost, ...) and loopback,
	// unspecified or broadcast addresses in the name position are skipped.
	FormatHosts
	// FormatAdblock is an Adblock Plus/uBlock/AdGuard list. Only "||name^"
	// rules are usable; rules with options ("||name^$third-party"),
	// exceptions ("@@"), cosmetic rules ("##") and other patterns are
	// counted as unsupported.
	FormatAdblock
)

// String returns "domains", "urls", "expressions", "hosts" or "adblock", or
// "Format(n)" for anything else.
func (f Format) String() string {
	switch f {
	case FormatDomains:
		return "domains"
	case FormatURLs:
		return "urls"
	case FormatExpressions:
		return "expressions"
	case FormatHosts:
		return "hosts"
	case FormatAdblock:
		return "adblock"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Limits of Parse.
const (
	// MaxLineLen is the longest line Parse reads, without its newline.
	// Longer lines are malformed and skipped.
	MaxLineLen = 64 << 10
	// MaxProblems is how many malformed lines Stats.Problems keeps.
	MaxProblems = 20
	// maxProblemText is how much of a line a Problem keeps.
	maxProblemText = 200
)

// Problem is a malformed line. The zero Problem means nothing.
type Problem struct {
	Source string // the name given to Parse (the path for ParseFile)
	Line   int    // 1-based line number
	Text   string // the line, trimmed and cut to at most 200 bytes
	Reason string // what is wrong, e.g. "empty label"
}

// String returns "source:line: reason: text".
func (p Problem) String() string {
	return p.Source + ":" + strconv.Itoa(p.Line) + ": " + p.Reason + ": " + p.Text
}

// Stats counts what Parse saw. The zero Stats is an empty list.
type Stats struct {
	Lines       int       // lines read, including blank lines and comments
	Entries     int       // entries emitted
	Malformed   int       // lines with a value that is not valid, all counted (a hosts line with several bad names once)
	Unsupported int       // valid lines of a syntax this package ignores (Adblock options, exceptions, cosmetic rules)
	Problems    []Problem // the first MaxProblems malformed lines; nil if none
}

// readerPool holds readers whose buffer fits a line of MaxLineLen bytes
// and its CR LF.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, MaxLineLen+2) }}

// Parse reads r line by line and calls emit for each entry, in order; emit
// may be nil to only count. name identifies r in problems and errors.
//
// Every format skips a UTF-8 byte order mark, a trailing CR, surrounding
// white space, blank lines and lines starting with "#"; domains and hosts
// files also allow a trailing " # comment". Bad lines never stop Parse: they
// are counted in the returned Stats. The error is non-nil only if reading r
// fails (the Stats then cover what was read) or f is not a known Format.
func Parse(r io.Reader, name string, f Format, emit func(Entry)) (Stats, error) {
	if f < FormatDomains || f > FormatAdblock {
		return Stats{}, fmt.Errorf("lists: %s: unknown format %v", name, f)
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()

	p := parser{name: name, f: f, emit: emit}
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 {
			p.line++
			p.st.Lines++
			n := len(b)
			if b[n-1] == '\n' {
				n--
			}
			if n > 0 && b[n-1] == '\r' {
				n--
			}
			if n <= MaxLineLen {
				p.process(b[:n])
			} else {
				p.text = b
				p.malformed("line longer than " + strconv.Itoa(MaxLineLen) + " bytes")
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = br.ReadSlice('\n')
				}
				if err == nil {
					continue
				}
			}
		}
		if err != nil {
			if err == io.EOF {
				return p.st, nil
			}
			return p.st, fmt.Errorf("lists: reading %s: %w", name, err)
		}
	}
}

// ParseFile is Parse on the file at path, which also names it in problems.
// Errors name the path.
func ParseFile(path string, f Format, emit func(Entry)) (Stats, error) {
	fh, err := os.Open(path)
	if err != nil {
		return Stats{}, fmt.Errorf("lists: %w", err)
	}
	defer fh.Close()
	return Parse(fh, path, f, emit)
}

// parser is the state of one Parse call.
type parser struct {
	name string
	f    Format
	emit func(Entry)
	st   Stats
	line int
	text []byte // the current line, trimmed, for problems
	buf  []byte // scratch space for building URL values
}

func (p *parser) add(k Kind, v string) {
	p.st.Entries++
	if p.emit != nil {
		p.emit(Entry{Kind: k, Value: v, Line: p.line})
	}
}

func (p *parser) malformed(reason string) {
	p.st.Malformed++
	if len(p.st.Problems) < MaxProblems {
		p.st.Problems = append(p.st.Problems, Problem{
			Source: p.name,
			Line:   p.line,
			Text:   cutText(p.text),
			Reason: reason,
		})
	}
}

func (p *parser) unsupported() { p.st.Unsupported++ }

// cutText copies b, cut to at most maxProblemText bytes on a UTF-8 boundary.
func cutText(b []byte) string {
	if len(b) <= maxProblemText {
		return string(b)
	}
	n := maxProblemText
	for n > maxProblemText-utf8.UTFMax && n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	if !utf8.RuneStart(b[n]) {
		n = maxProblemText
	}
	return string(b[:n])
}

func (p *parser) process(b []byte) {
	if p.line == 1 && len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		b = b[3:]
	}
	b = trimSpace(b)
	if len(b) == 0 {
		return
	}
	p.text = b
	switch p.f {
	case FormatDomains:
		p.domainsLine(b)
	case FormatURLs:
		p.urlLine(b)
	case FormatExpressions:
		p.expressionLine(b)
	case FormatHosts:
		p.hostsFileLine(b)
	case FormatAdblock:
		p.adblockLine(b)
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

func trimRight(b []byte) []byte {
	j := len(b)
	for j > 0 && isSpace(b[j-1]) {
		j--
	}
	return b[:j]
}

func indexSpace(b []byte) int {
	for i, c := range b {
		if isSpace(c) {
			return i
		}
	}
	return -1
}

func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// hasPrefixFold is hasPrefix ignoring ASCII case; prefix must be lower case.
func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// stripComment cuts a trailing "# comment" that follows white space.
func stripComment(b []byte) []byte {
	for i := 1; i < len(b); i++ {
		if b[i] == '#' && isSpace(b[i-1]) {
			return trimRight(b[:i])
		}
	}
	return b
}
