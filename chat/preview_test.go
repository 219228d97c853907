package chat

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestPreviewOf(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	long := strings.Repeat("word ", 60) // 300 code points
	cases := []struct{ name, text, want string }{
		{"short", "My card was declined", "My card was declined"},
		{"lines and runs of space", "  Hello,\n\n  my order\tLF-7K3Q  ", "Hello, my order LF-7K3Q"},
		{"exactly the limit", strings.Repeat("é", PreviewRunes), strings.Repeat("é", PreviewRunes)},
		{"one code point over", strings.Repeat("é", PreviewRunes+1), strings.Repeat("é", PreviewRunes-1) + "…"},
		{"cut at a word", long, strings.TrimSpace(long[:135]) + "…"},
		{"empty", "", ""},
	}
	for _, c := range cases {
		p := PreviewOf(Message{Text: c.text, At: at, Author: Author{Kind: AuthorVisitor, ID: "v1"}})
		if p.Text != c.want {
			t.Errorf("%s: preview %q, want %q", c.name, p.Text, c.want)
		}
		if n := utf8.RuneCountInString(p.Text); n > PreviewRunes {
			t.Errorf("%s: %d code points, over %d", c.name, n, PreviewRunes)
		}
		if p.Author != AuthorVisitor || !p.At.Equal(at) {
			t.Errorf("%s: author %q at %v, want the message's", c.name, p.Author, p.At)
		}
	}
}
