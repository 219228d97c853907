package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lifelinehq/lifeline/chat"
)

// APIKey is a credential for server-to-server use of the REST API. It acts
// with a role, like an agent, and only its SHA-256 digest is stored.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      chat.Role `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// storedKey is APIKey as stored, digest included.
type storedKey struct {
	APIKey
	Digest string `json:"digest"`
}

// keyPrefix starts every API key secret: "lfk_<id>_<random>".
const keyPrefix = "lfk_"

// keyIndex is the log of created key IDs; each key is a meta record.
const keyIndex = "auth/apikeys"

func keyRecord(id string) string { return "auth/apikey/" + id }

// maxKeys bounds the keys a deployment can list.
const maxKeys = 1000

// ErrNoKey means the bearer token is not a live API key.
var ErrNoKey = errors.New("auth: unknown or revoked API key")

// CreateKey makes an API key acting with role. The secret is returned once
// and never stored.
func (s *Service) CreateKey(ctx context.Context, name string, role chat.Role, by chat.Agent) (APIKey, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return APIKey{}, "", invalid("a key needs a name of 1 to 100 characters")
	}
	if !role.Valid() {
		return APIKey{}, "", invalid("role %q is not admin, agent or analyst", role)
	}
	id := strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	secret := keyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(raw)
	k := storedKey{APIKey: APIKey{ID: id, Name: name, Role: role, CreatedAt: s.o.Now().UTC(), CreatedBy: by.Email}, Digest: digest(secret)}
	data, _ := json.Marshal(k)
	if err := s.store.PutMeta(ctx, keyRecord(id), data); err != nil {
		return APIKey{}, "", fmt.Errorf("store API key: %w", err)
	}
	if err := s.store.AppendLog(ctx, keyIndex, []byte(id), maxKeys); err != nil {
		return APIKey{}, "", fmt.Errorf("index API key: %w", err)
	}
	return k.APIKey, secret, nil
}

func (s *Service) key(ctx context.Context, id string) (storedKey, error) {
	data, err := s.store.Meta(ctx, keyRecord(id))
	if err != nil {
		return storedKey{}, err
	}
	var k storedKey
	if err := json.Unmarshal(data, &k); err != nil {
		return storedKey{}, fmt.Errorf("decode API key %s: %w", id, err)
	}
	return k, nil
}

// Keys lists the API keys, newest first, revoked ones included.
func (s *Service) Keys(ctx context.Context) ([]APIKey, error) {
	ids, err := s.store.Log(ctx, keyIndex, maxKeys)
	if err != nil {
		return nil, err
	}
	out := make([]APIKey, 0, len(ids))
	for _, id := range ids {
		k, err := s.key(ctx, string(id))
		if errors.Is(err, chat.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, k.APIKey)
	}
	return out, nil
}

// RevokeKey stops a key from working. Revoking twice is not an error.
func (s *Service) RevokeKey(ctx context.Context, id string) (APIKey, error) {
	k, err := s.key(ctx, id)
	if err != nil {
		return APIKey{}, err
	}
	if k.RevokedAt.IsZero() {
		k.RevokedAt = s.o.Now().UTC()
		data, _ := json.Marshal(k)
		if err := s.store.PutMeta(ctx, keyRecord(id), data); err != nil {
			return APIKey{}, err
		}
	}
	return k.APIKey, nil
}

// KeyAgent returns the principal of a bearer API key secret: an agent
// record named "key:<name>" with the key's role.
func (s *Service) KeyAgent(ctx context.Context, secret string) (chat.Agent, error) {
	rest, ok := strings.CutPrefix(secret, keyPrefix)
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(secret) > 200 {
		return chat.Agent{}, ErrNoKey
	}
	k, err := s.key(ctx, id)
	if errors.Is(err, chat.ErrNotFound) {
		return chat.Agent{}, ErrNoKey
	}
	if err != nil {
		return chat.Agent{}, err
	}
	if subtle.ConstantTimeCompare([]byte(k.Digest), []byte(digest(secret))) != 1 || !k.RevokedAt.IsZero() {
		return chat.Agent{}, ErrNoKey
	}
	return chat.Agent{ID: "key:" + k.ID, Email: "key:" + k.Name, Name: k.Name, Role: k.Role}, nil
}
