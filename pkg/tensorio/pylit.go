package tensorio

import (
	"fmt"
)

// A tiny parser for the Python literals that a .npy header holds: a dict of
// string keys whose values are strings, booleans, None, integers, and tuples
// or lists of those. It is enough to read any header numpy writes (and the
// "3L" longs of Python 2 numpy) and to reject anything else with an error,
// never a panic. Nesting is bounded so that a hostile header cannot exhaust
// the stack.

type pyKind uint8

const (
	pyStr pyKind = iota + 1
	pyInt
	pyBool
	pyNone
	pyTuple
	pyList
)

// pyValue is one parsed literal. Integers keep their text so that the caller
// decides what range is acceptable.
type pyValue struct {
	kind  pyKind
	str   string // pyStr: the string; pyInt: the digits, with a leading '-' if negative
	b     bool
	items []pyValue
}

func (v pyValue) String() string {
	switch v.kind {
	case pyStr:
		return "'" + v.str + "'"
	case pyInt:
		return v.str
	case pyBool:
		if v.b {
			return "True"
		}
		return "False"
	case pyNone:
		return "None"
	case pyTuple, pyList:
		open, close := "(", ")"
		if v.kind == pyList {
			open, close = "[", "]"
		}
		s := open
		for i, it := range v.items {
			if i > 0 {
				s += ", "
			}
			s += it.String()
		}
		if v.kind == pyTuple && len(v.items) == 1 {
			s += ","
		}
		return s + close
	}
	return "?"
}

const pyMaxDepth = 8

type pyParser struct {
	s     []byte
	pos   int
	depth int
}

// parsePyDict parses s as a dict literal followed only by whitespace. It
// returns the keys in order and their values; a repeated key is an error.
func parsePyDict(s []byte) (keys []string, vals []pyValue, err error) {
	p := &pyParser{s: s}
	p.space()
	if !p.eat('{') {
		return nil, nil, p.errf("header does not start with '{'")
	}
	for {
		p.space()
		if p.eof() {
			return nil, nil, p.errf("unterminated dict")
		}
		if p.eat('}') {
			break
		}
		if len(keys) > 0 {
			if !p.eat(',') {
				return nil, nil, p.errf("expected ',' or '}' in dict")
			}
			p.space()
			if p.eat('}') {
				break
			}
		}
		k, err := p.value()
		if err != nil {
			return nil, nil, err
		}
		if k.kind != pyStr {
			return nil, nil, p.errf("dict key %s is not a string", k)
		}
		for _, seen := range keys {
			if seen == k.str {
				return nil, nil, p.errf("duplicate key '%s'", k.str)
			}
		}
		p.space()
		if !p.eat(':') {
			if p.eof() {
				return nil, nil, p.errf("unterminated dict")
			}
			return nil, nil, p.errf("expected ':' after key '%s'", k.str)
		}
		p.space()
		v, err := p.value()
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k.str)
		vals = append(vals, v)
	}
	p.space()
	if !p.eof() {
		return nil, nil, p.errf("unexpected %q after the dict", p.s[p.pos])
	}
	return keys, vals, nil
}

func (p *pyParser) errf(format string, args ...any) error {
	return fmt.Errorf("%s at byte %d", fmt.Sprintf(format, args...), p.pos)
}

func (p *pyParser) eof() bool { return p.pos >= len(p.s) }

func (p *pyParser) eat(c byte) bool {
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *pyParser) space() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.pos++
		default:
			return
		}
	}
}

func (p *pyParser) value() (pyValue, error) {
	if p.eof() {
		return pyValue{}, p.errf("unterminated dict")
	}
	c := p.s[p.pos]
	switch {
	case c == '\'' || c == '"':
		return p.str()
	case (c == 'u' || c == 'b') && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '\'' || p.s[p.pos+1] == '"'):
		p.pos++
		return p.str()
	case c == '-' || c == '+' || (c >= '0' && c <= '9'):
		return p.int()
	case c == '(' || c == '[':
		return p.seq()
	case isIdentStart(c):
		start := p.pos
		for p.pos < len(p.s) && isIdentStart(p.s[p.pos]) {
			p.pos++
		}
		switch w := string(p.s[start:p.pos]); w {
		case "True":
			return pyValue{kind: pyBool, b: true}, nil
		case "False":
			return pyValue{kind: pyBool}, nil
		case "None":
			return pyValue{kind: pyNone}, nil
		default:
			p.pos = start
			return pyValue{}, p.errf("unexpected word %q", w)
		}
	}
	return pyValue{}, p.errf("unexpected %q", c)
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func (p *pyParser) str() (pyValue, error) {
	q := p.s[p.pos]
	p.pos++
	var out []byte
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		p.pos++
		switch c {
		case q:
			return pyValue{kind: pyStr, str: string(out)}, nil
		case '\\':
			if p.pos >= len(p.s) {
				return pyValue{}, p.errf("unterminated string")
			}
			out = append(out, p.s[p.pos])
			p.pos++
		case '\n':
			return pyValue{}, p.errf("unterminated string")
		default:
			out = append(out, c)
		}
	}
	return pyValue{}, p.errf("unterminated string")
}

func (p *pyParser) int() (pyValue, error) {
	var out []byte
	switch p.s[p.pos] {
	case '-':
		out = append(out, '-')
		p.pos++
	case '+':
		p.pos++
	}
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	if p.pos == start {
		return pyValue{}, p.errf("expected digits")
	}
	out = append(out, p.s[start:p.pos]...)
	if p.pos < len(p.s) && (p.s[p.pos] == 'L' || p.s[p.pos] == 'l') {
		p.pos++ // Python 2 long
	}
	return pyValue{kind: pyInt, str: string(out)}, nil
}

func (p *pyParser) seq() (pyValue, error) {
	open := p.s[p.pos]
	p.pos++
	v := pyValue{kind: pyTuple}
	closer := byte(')')
	if open == '[' {
		v.kind, closer = pyList, ']'
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > pyMaxDepth {
		return pyValue{}, p.errf("literal nested too deeply")
	}
	for {
		p.space()
		if p.eof() {
			return pyValue{}, p.errf("unterminated %c", open)
		}
		if p.eat(closer) {
			return v, nil
		}
		if len(v.items) > 0 {
			if !p.eat(',') {
				return pyValue{}, p.errf("expected ',' or %q", closer)
			}
			p.space()
			if p.eat(closer) {
				return v, nil
			}
		}
		it, err := p.value()
		if err != nil {
			return pyValue{}, err
		}
		v.items = append(v.items, it)
	}
}
