package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestDecodeVisitor(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", MaxTextRunes+1)
	tests := []struct {
		name, in, code string
	}{
		{"hello", `{"type":"hello","token":"x","last_seq":3}`, ""},
		{"message", `{"type":"message","client_id":"c1","text":"hi"}`, ""},
		{"message at limit", `{"type":"message","client_id":"c1","text":"` + strings.Repeat("é", MaxTextRunes) + `"}`, ""},
		{"message over limit", `{"type":"message","client_id":"c1","text":"` + long + `"}`, CodeTooLong},
		{"message without client id", `{"type":"message","text":"hi"}`, CodeInvalid},
		{"blank message", `{"type":"message","client_id":"c","text":" \n"}`, CodeInvalid},
		{"not json", `hello`, CodeBadFrame},
		{"array", `[1,2]`, CodeBadFrame},
		{"wrong field type", `{"type":"message","client_id":5}`, CodeBadFrame},
		{"no type", `{"text":"x"}`, CodeUnknownType},
		{"agent-only type", `{"type":"claim","conversation_id":"c"}`, CodeUnknownType},
		{"negative seq", `{"type":"read","seq":-1}`, CodeInvalid},
		{"long client id", `{"type":"message","client_id":"` + strings.Repeat("a", 65) + `","text":"x"}`, CodeInvalid},
		{"leave message bad email", `{"type":"leave_message","client_id":"c","text":"x","email":"nope"}`, CodeInvalid},
		{"leave message", `{"type":"leave_message","client_id":"c","text":"x","email":"a@b.co"}`, ""},
		{"identify without id", `{"type":"identify","identity":{"name":"x"}}`, CodeInvalid},
		{"feedback without answer", `{"type":"feedback"}`, CodeInvalid},
		{"feedback", `{"type":"feedback","solved":false}`, ""},
		{"too many events", `{"type":"events","events":[` + strings.TrimSuffix(strings.Repeat(`{"k":"click"},`, MaxBatchEvents+1), ",") + `]}`, CodeTooLarge},
		{"events", `{"type":"events","events":[{"k":"click","t":1}]}`, ""},
		{"unknown fields ignored", `{"type":"ping","future":true}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeVisitor([]byte(tt.in))
			if got := codeOf(err); got != tt.code {
				t.Errorf("DecodeVisitor(%.60q) code = %q, want %q (err %v)", tt.in, got, tt.code, err)
			}
		})
	}
}

func TestDecodeAgent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, code string
	}{
		{"claim", `{"type":"claim","conversation_id":"c"}`, ""},
		{"claim without conversation", `{"type":"claim"}`, CodeInvalid},
		{"message without conversation", `{"type":"message","client_id":"c","text":"x"}`, CodeInvalid},
		{"presence", `{"type":"presence","status":"away"}`, ""},
		{"presence bad status", `{"type":"presence","status":"busy"}`, CodeInvalid},
		{"transfer without agent", `{"type":"transfer","conversation_id":"c"}`, CodeInvalid},
		{"visitor-only type", `{"type":"identify","identity":{"id":"x"}}`, CodeUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeAgent([]byte(tt.in))
			if got := codeOf(err); got != tt.code {
				t.Errorf("DecodeAgent(%q) code = %q, want %q (err %v)", tt.in, got, tt.code, err)
			}
		})
	}
}

func codeOf(err error) string {
	if err == nil {
		return ""
	}
	var fe *FrameError
	if errors.As(err, &fe) {
		return fe.Code
	}
	return "not a FrameError: " + err.Error()
}

// FuzzDecode feeds arbitrary bytes, and real frames cut in two, to both
// decoders: they must never panic and every error must be a FrameError.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","token":"v1.demo.abc.def","last_seq":12,"page":{"path":"/checkout"}}`,
		`{"type":"message","client_id":"8f1c","text":"My card was declined"}`,
		`{"type":"events","events":[{"t":1700000000000,"k":"click","sel":"#pay","x":10,"y":20,"rage":3}]}`,
		`{"type":"identify","identity":{"id":"u_42","name":"Ava","email":"ava@example.com","hash":"00","attributes":{"plan":"pro"}}}`,
		`{"type":"transfer","conversation_id":"c","agent_id":"a","text":"VIP"}`,
		`{"type":"feedback","conversation_id":"c","solved":false}`,
	} {
		f.Add([]byte(s))
		f.Add([]byte(s[:len(s)/2]))
		f.Add([]byte(s[len(s)/2:]))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, decode := range []func([]byte) (Inbound, error){DecodeVisitor, DecodeAgent} {
			in, err := decode(data)
			if err != nil {
				var fe *FrameError
				if !errors.As(err, &fe) {
					t.Fatalf("decode(%q) error %v is not a FrameError", data, err)
				}
				continue
			}
			if in.Type == "" {
				t.Fatalf("decode(%q) accepted a frame without type", data)
			}
		}
	})
}

func TestVisitorToken(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	tok := SignVisitorToken(secret, "shop", "v-1")
	if id, ok := VerifyVisitorToken(secret, "shop", tok); !ok || id != "v-1" {
		t.Fatalf("VerifyVisitorToken(own token) = %q, %v; want v-1, true", id, ok)
	}
	bad := []struct{ name, site, tok string }{
		{"other site", "other", tok},
		{"forged visitor", "shop", strings.Replace(tok, "v-1", "v-2", 1)},
		{"truncated mac", "shop", tok[:len(tok)-2]},
		{"empty", "shop", ""},
		{"other secret", "shop", SignVisitorToken([]byte("another secret of 32 bytes......"), "shop", "v-1")},
	}
	for _, b := range bad {
		if id, ok := VerifyVisitorToken(secret, b.site, b.tok); ok {
			t.Errorf("%s: VerifyVisitorToken = %q, true; want rejection", b.name, id)
		}
	}
}

func TestVerifyIdentity(t *testing.T) {
	t.Parallel()
	h := IdentityHash("s3cret", "u_42")
	if !VerifyIdentity("s3cret", "u_42", h) || !VerifyIdentity("s3cret", "u_42", strings.ToUpper(h)) {
		t.Fatal("a correct hash did not verify")
	}
	if VerifyIdentity("s3cret", "u_43", h) || VerifyIdentity("", "u_42", IdentityHash("", "u_42")) || VerifyIdentity("s3cret", "u_42", "") {
		t.Fatal("a wrong user, an empty secret or an empty hash verified")
	}
}

func TestValidEmail(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"ava@example.com": true, "a.b+c@sub.example.co": true,
		"": false, "ava": false, "@example.com": false, "ava@": false, "ava@example": false,
		"a b@example.com": false, "a@b@c.com": false, "<a@b.com>": false,
	} {
		if got := ValidEmail(s); got != want {
			t.Errorf("ValidEmail(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzDecodeFast holds the hand decoder of frames to encoding/json:
// whatever it accepts, json.Unmarshal accepts and decodes the same.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","client_id":"8f1c","text":"My card was declined"}`,
		`{"type":"events","events":[{"t":1700000000000,"k":"click","sel":"#pay","x":10,"y":20,"rage":3},{"t":1,"k":"error","msg":"a \"b\" \u00e9"}]}`,
		`{"type":"events","events":[]}`, `{"type":"events","events":[1,"x",null,[{}]]}`, `{"type":"typing","typing":true}`,
		`{"type":"read","seq":12}`, `{"type":"hello","token":"t","last_seq":3,"locale":"en"}`, `{"type":"hello","page":{"path":"/"}}`,
		`{"type":"feedback","conversation_id":"c","solved":false}`, `{"type":"presence","status":"online","capacity":3}`,
		`{"type":"offer_response","offer_id":"o","accept":true}`, `{"type":"message","text":"a\nb"}`, `{"Type":"message"}`,
		`{"type":"read","seq":1.5}`, `{"type":null}`, `{"type":"x"} y`, `{"type":"x","type":"y"}`, `{}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast Inbound
		if !fast.decodeFast(data) {
			return
		}
		var slow Inbound
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("decodeFast accepted %q, which json.Unmarshal refuses: %v", data, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\ndecodeFast     %+v\njson.Unmarshal %+v", data, fast, slow)
		}
	})
}

// The frames the widget sends most take the fast path.
func TestDecodeFastCoversTheBusiestFrames(t *testing.T) {
	for _, s := range []string{
		`{"type":"message","client_id":"8f1c","text":"My card was declined"}`,
		`{"type":"events","events":[{"t":1700000000000,"k":"error","msg":"x \"quoted\" \u00e9"}]}`,
		`{"type":"typing","typing":false}`, `{"type":"read","seq":4}`, `{"type":"ping"}`,
	} {
		var in Inbound
		if !in.decodeFast([]byte(s)) {
			t.Errorf("decodeFast(%s) fell back", s)
		}
	}
}

// New visitor and conversation IDs sort in the order they were made, so
// the embedded store appends them to its indexes (see newRecordID).
func TestRecordIDsAreTimeOrdered(t *testing.T) {
	prev := newRecordID()
	for range 1000 {
		id := newRecordID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 {
			t.Fatalf("ID %q: version %d, err %v; want a version 7 UUID", id, u.Version(), err)
		}
		if id <= prev {
			t.Fatalf("ID %q made after %q sorts before it", id, prev)
		}
		prev = id
	}
}

func TestProblem(t *testing.T) {
	invalid := func(what string) error { return fmt.Errorf("%w: %s", ErrInvalid, what) }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{invalid("a password needs at least 10 characters"), "a password needs at least 10 characters"},
		{fmt.Errorf("update conversation c1: %w", invalid("status \"x\" is not valid")), `status "x" is not valid`},
		{errors.Join(invalid("email: missing"), invalid("name: too long")), "email: missing\nname: too long"},
		{fmt.Errorf("get c1: %w", ErrNotFound), "get c1: chat: not found"},
		{errors.New("text that mentions chat: invalid argument: but is not one"), "text that mentions chat: invalid argument: but is not one"},
	} {
		if got := Problem(tc.err); got != tc.want {
			t.Errorf("Problem(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
