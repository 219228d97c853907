package jsonwire

import (
	"encoding/json"
	"testing"
)

var seeds = []string{
	`{"t":1,"k":"page","path":"/a"}`, `[1,-2.5e3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"]`, `{}`, `[]`, ` "a" `,
	`{"a":{"b":[{"c":[]}]}}`, `"\u12"`, `"\x"`, "\"a\x01\"", `01`, `-`, `1.`, `1e`, `tru`, `nul`, `{"a"}`, `{"a":}`,
	`[1,]`, `{,}`, "\"caf\xc3\xa9\"", "\"\xff\"", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
}

// FuzzSkip holds Skip to encoding/json's syntax: whatever it accepts is
// valid JSON, and so is the whole input when only space follows.
func FuzzSkip(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New(data)
		raw, ok := s.Skip()
		if !ok {
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("Skip accepted %q, which is not valid JSON", raw)
		}
		if s.End() && !json.Valid(data) {
			t.Fatalf("Skip read all of %q, which is not valid JSON", data)
		}
	})
}

func TestSkip(t *testing.T) {
	for _, tc := range []struct {
		in, raw string
		ok      bool
	}{
		{` {"a":[1,"b\n",{"c":null}]} ,`, `{"a":[1,"b\n",{"c":null}]}`, true},
		{`"\u00e9\"" x`, `"\u00e9\""`, true},
		{`-0.5E+3]`, `-0.5E+3`, true},
		{`"\u00g0"`, "", false},
		{`{"a" 1}`, "", false},
		{`[1 2]`, "", false},
		{"\"tab\there\"", "", false},
	} {
		s := New([]byte(tc.in))
		raw, ok := s.Skip()
		if ok != tc.ok || string(raw) != tc.raw {
			t.Errorf("Skip(%q) = %q, %v; want %q, %v", tc.in, raw, ok, tc.raw, tc.ok)
		}
	}
}

func TestScalars(t *testing.T) {
	s := New([]byte(` "plain" "esc\"" 12 1.5`))
	if b, ok := s.Str(); !ok || string(b) != "plain" {
		t.Fatalf("Str = %q, %v", b, ok)
	}
	if _, ok := s.Str(); ok {
		t.Fatal("Str read an escape")
	}
	s = New([]byte(`12 1.5`))
	var n int64
	if !s.Int64To(&n) || n != 12 {
		t.Fatalf("Int64To = %d", n)
	}
	if s.Int64To(&n) {
		t.Fatal("Int64To read 1.5")
	}
	if s = New([]byte(`99999999999999999999`)); s.Int64To(&n) {
		t.Fatal("Int64To read a number past int64")
	}
	var f float64
	if s = New([]byte(`1e400`)); s.FloatTo(&f) {
		t.Fatal("FloatTo read a number past float64")
	}
	var b bool
	if s = New([]byte(` true x`)); !s.BoolTo(&b) || !b || s.End() {
		t.Fatalf("BoolTo = %v; End %v", b, s.End())
	}
}

func TestLitAndTextTo(t *testing.T) {
	var a, b, c string
	s := New([]byte(`{"a":"plain","b":"esc\"aped \u00e9","c":"bad` + "\xff" + `"}`))
	ok := s.Lit(`{"a":`) && s.TextTo(&a) && s.Lit(`,"b":`) && s.TextTo(&b) && s.Lit(`,"c":`) && s.TextTo(&c) && s.Lit(`}`) && s.End()
	if !ok || a != "plain" || b != "esc\"aped é" || c != "bad\uFFFD" {
		t.Fatalf("ok %v, %q %q %q", ok, a, b, c)
	}
	if New([]byte(` {`)).Lit(`{`) {
		t.Fatal("Lit skipped space")
	}
}

func TestFieldsInsideAValueAndNull(t *testing.T) {
	s := New([]byte(`[ {"a":"x","b":{}} , null ]`))
	var got []string
	ok := s.Next('[') && s.Fields(func(key []byte) bool {
		got = append(got, string(key))
		_, ok := s.Skip()
		return ok
	}) && s.Next(',') && s.Null() && s.Next(']') && s.End()
	if !ok || len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("Fields then Null = %v, keys %q", ok, got)
	}
	trailing := New([]byte(`{"a":1} x`))
	if New([]byte(` nul`)).Null() || trailing.Object(func([]byte) bool { _, ok := trailing.Skip(); return ok }) {
		t.Fatal("Null took a prefix, or Object took an object with input after it")
	}
}

// FuzzAppendString holds AppendString to the bytes encoding/json writes
// for the same string, appended after what the buffer held.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x01\x1f\x7f",
		"bad utf8 \xff\xfe end", "line sep \u2028 para \u2029", "emoji 🙂 and ünïcödé", "\xed\xa0\x80 surrogate half", "\b\f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("AppendString(%q) = %s, want x%s", s, got, want)
		}
	})
}

// BenchmarkAppendString quotes what the node's frames carry most: IDs,
// a short chat message, and a sentence with accents.
func BenchmarkAppendString(b *testing.B) {
	for name, s := range map[string]string{
		"id":      "0193a6f2-7c1e-7d4b-9a55-2f0c8e1b3d47",
		"message": "Hi, my card was declined twice at checkout. Can you help?",
		"accents": "Bonjour, ma carte a été refusée deux fois à la caisse.",
	} {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				buf = AppendString(buf[:0], s)
			}
		})
	}
}
