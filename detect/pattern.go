package detect

import (
	"fmt"
	"strings"
)

// Pattern matches page paths. It is a path where "*" matches any run of
// characters (including "/") and a segment ":name" matches any one segment,
// so "/checkout*" matches /checkout, /checkout/pay and /checkout-2, and
// "/orders/:id" matches /orders/:id and /orders/A7. The empty pattern and
// "*" match every path. Matching never allocates.
type Pattern struct {
	src string
	all bool
}

// CompilePattern checks and compiles a page pattern.
func CompilePattern(s string) (Pattern, error) {
	if s == "" || s == "*" {
		return Pattern{src: s, all: true}, nil
	}
	if len(s) > 200 {
		return Pattern{}, fmt.Errorf("pattern is %d bytes, limit 200", len(s))
	}
	if s[0] != '/' && s[0] != '*' {
		return Pattern{}, fmt.Errorf("pattern %q must start with \"/\" or \"*\"", s)
	}
	if strings.ContainsAny(s, "?# \t\n") {
		return Pattern{}, fmt.Errorf("pattern %q must not contain a query, fragment or space", s)
	}
	for seg := range strings.SplitSeq(s, "/") {
		if strings.HasPrefix(seg, ":") && (len(seg) == 1 || strings.ContainsAny(seg[1:], ":*")) {
			return Pattern{}, fmt.Errorf("pattern %q: bad parameter segment %q", s, seg)
		}
	}
	return Pattern{src: s}, nil
}

// MustPattern is CompilePattern for constants; it panics on a bad pattern.
func MustPattern(s string) Pattern {
	p, err := CompilePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern's source.
func (p Pattern) String() string { return p.src }

// Match reports whether path matches the pattern.
func (p Pattern) Match(path string) bool {
	if p.all {
		return true
	}
	return globMatch(p.src, path)
}

// globMatch is an iterative matcher with one backtrack point for "*".
func globMatch(pat, s string) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) || pi < len(pat) {
		if pi < len(pat) {
			c := pat[pi]
			switch {
			case c == '*':
				starP, starS = pi, si
				pi++
				continue
			case c == ':' && (pi == 0 || pat[pi-1] == '/'):
				// Parameter: skip the pattern segment and one non-empty path segment.
				pe := pi
				for pe < len(pat) && pat[pe] != '/' {
					pe++
				}
				se := si
				for se < len(s) && s[se] != '/' {
					se++
				}
				if se > si {
					pi, si = pe, se
					continue
				}
			case si < len(s) && s[si] == c:
				pi++
				si++
				continue
			}
		}
		if starP >= 0 && starS < len(s) {
			starS++
			pi, si = starP+1, starS
			continue
		}
		return false
	}
	return true
}
