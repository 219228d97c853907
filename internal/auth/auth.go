// Package auth manages agent accounts and their browser sessions: bcrypt
// passwords, HttpOnly SameSite cookies, CSRF tokens, roles and login
// throttling.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/audit"
	"golang.org/x/crypto/bcrypt"
)

// CookieName is the session cookie.
const CookieName = "lifeline_session"

// MinPasswordLen is the shortest password accepted for a new account.
const MinPasswordLen = 10

// Errors returned by the Service. Validation errors also match
// chat.ErrInvalid.
var (
	// ErrBadCredentials means the email is unknown, the password is wrong or
	// the account is disabled. Which one is never told.
	ErrBadCredentials = errors.New("auth: bad credentials")
	// ErrThrottled means too many failed logins for this email or address.
	ErrThrottled = errors.New("auth: too many failed logins")
	// ErrNoSession means the request carries no valid session.
	ErrNoSession = errors.New("auth: no session")
)

// Options configures a Service.
type Options struct {
	Logger *slog.Logger
	// BcryptCost is the bcrypt work factor. Defaults to bcrypt.DefaultCost;
	// tests use bcrypt.MinCost.
	BcryptCost int
	// SessionTTL is a session's absolute lifetime. Defaults to 7 days.
	SessionTTL time.Duration
	// SecureCookies sets the Secure flag on the cookie; on when the public
	// URL is https.
	SecureCookies bool
	// MaxFailures is how many failed logins per email or address are allowed
	// in FailureWindow before ErrThrottled. Defaults to 10 in 15 minutes.
	MaxFailures   int
	FailureWindow time.Duration
	// Audit records API key changes. Nil records nothing.
	Audit *audit.Log
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Service authenticates agents against a chat.Store.
type Service struct {
	store chat.Store
	o     Options

	mu       sync.Mutex
	failures map[string][]time.Time // by "email:" or "ip:" key
}

// New returns a Service storing accounts and sessions in store.
func New(store chat.Store, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = bcrypt.DefaultCost
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 7 * 24 * time.Hour
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 10
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{store: store, o: o, failures: make(map[string][]time.Time)}
}

// GeneratePassword returns a random 20-character password for a first admin.
func GeneratePassword() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{chat.ErrInvalid}, args...)...)
}

// normalizeEmail validates and lower-cases an email address.
func normalizeEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email {
		return "", invalid("%q is not an email address", email)
	}
	return email, nil
}

func checkPassword(p string) error {
	if len(p) < MinPasswordLen {
		return invalid("a password needs at least %d characters", MinPasswordLen)
	}
	if len(p) > 72 {
		return invalid("a password has at most 72 bytes")
	}
	return nil
}

// HashPassword returns the bcrypt hash of password at the service's cost.
func (s *Service) HashPassword(password string) ([]byte, error) {
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	return bcrypt.GenerateFromPassword([]byte(password), s.o.BcryptCost)
}

// AddAgent creates an account. ErrConflict if the email is taken.
func (s *Service) AddAgent(ctx context.Context, email, name string, role chat.Role, password string) (chat.Agent, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return chat.Agent{}, err
	}
	if role == "" {
		role = chat.RoleAgent
	}
	if !role.Valid() {
		return chat.Agent{}, invalid("role %q is not admin, agent or analyst", role)
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name, _, _ = strings.Cut(email, "@")
	}
	if len(name) > 100 {
		return chat.Agent{}, invalid("a name has at most 100 characters")
	}
	hash, err := s.HashPassword(password)
	if err != nil {
		return chat.Agent{}, err
	}
	a := chat.Agent{
		ID: uuid.NewString(), Email: email, Name: name, Role: role,
		PasswordHash: hash, CreatedAt: s.o.Now().UTC(),
	}
	if err := s.store.CreateAgent(ctx, a); errors.Is(err, chat.ErrConflict) {
		return chat.Agent{}, fmt.Errorf("an agent with email %s already exists: %w", email, chat.ErrConflict)
	} else if err != nil {
		return chat.Agent{}, fmt.Errorf("add agent %s: %w", email, err)
	}
	return a, nil
}

// EnsureAdmin creates the first admin with email and password when no admin
// exists yet. created reports whether it did.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (created bool, err error) {
	agents, err := s.store.Agents(ctx)
	if err != nil {
		return false, err
	}
	for _, a := range agents {
		if a.Role == chat.RoleAdmin {
			return false, nil
		}
	}
	if _, err := s.AddAgent(ctx, email, "Admin", chat.RoleAdmin, password); err != nil {
		return false, err
	}
	return true, nil
}

// SetPassword changes an agent's password and ends their sessions' future
// use by requiring a new login (sessions carry no password state, so
// existing ones stay valid until they expire or log out).
func (s *Service) SetPassword(ctx context.Context, agentID, password string) error {
	hash, err := s.HashPassword(password)
	if err != nil {
		return err
	}
	a, err := s.store.Agent(ctx, agentID)
	if err != nil {
		return err
	}
	a.PasswordHash = hash
	return s.store.UpdateAgent(ctx, a)
}

// SetDisabled disables or enables an account. A disabled agent cannot log
// in and their sessions stop authenticating.
func (s *Service) SetDisabled(ctx context.Context, agentID string, disabled bool) error {
	a, err := s.store.Agent(ctx, agentID)
	if err != nil {
		return err
	}
	a.Disabled = disabled
	return s.store.UpdateAgent(ctx, a)
}

// throttled reports whether key has too many recent failures.
func (s *Service) throttled(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recent(key, now)) >= s.o.MaxFailures
}

// recent prunes and returns key's failures within the window. s.mu held.
func (s *Service) recent(key string, now time.Time) []time.Time {
	list := s.failures[key]
	i := 0
	for i < len(list) && now.Sub(list[i]) > s.o.FailureWindow {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(s.failures, key)
	} else {
		s.failures[key] = list
	}
	return list
}

func (s *Service) fail(now time.Time, keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) > 100_000 { // bound memory under a spray of addresses
		clear(s.failures)
	}
	for _, k := range keys {
		s.failures[k] = append(s.recent(k, now), now)
	}
}

// Login checks credentials and starts a session. token is the secret
// cookie value; only its digest is stored. ip is the client's address, used
// for throttling.
func (s *Service) Login(ctx context.Context, email, password, ip string) (a chat.Agent, sess chat.Session, token string, err error) {
	now := s.o.Now()
	email = strings.ToLower(strings.TrimSpace(email))
	ekey, ikey := "email:"+email, "ip:"+ip
	if s.throttled(ekey, now) || s.throttled(ikey, now) {
		return a, sess, "", ErrThrottled
	}
	a, err = s.store.AgentByEmail(ctx, email)
	if errors.Is(err, chat.ErrNotFound) {
		// Spend the same time as a real check so timing tells nothing.
		_ = bcrypt.CompareHashAndPassword(dummyHash(s.o.BcryptCost), []byte(password))
		s.fail(now, ekey, ikey)
		return a, sess, "", ErrBadCredentials
	}
	if err != nil {
		return a, sess, "", err
	}
	if bcrypt.CompareHashAndPassword(a.PasswordHash, []byte(password)) != nil || a.Disabled {
		s.fail(now, ekey, ikey)
		s.o.Logger.Info("login failed", "email", email, "ip", ip)
		return chat.Agent{}, sess, "", ErrBadCredentials
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token = base64.RawURLEncoding.EncodeToString(raw)
	csrf := make([]byte, 24)
	_, _ = rand.Read(csrf)
	sess = chat.Session{
		ID: digest(token), AgentID: a.ID, CSRF: base64.RawURLEncoding.EncodeToString(csrf),
		CreatedAt: now.UTC(), ExpiresAt: now.Add(s.o.SessionTTL).UTC(),
	}
	if err := s.store.PutSession(ctx, sess); err != nil {
		return chat.Agent{}, chat.Session{}, "", fmt.Errorf("store session: %w", err)
	}
	s.o.Logger.Info("login", "agent", a.ID, "email", email, "ip", ip)
	return a, sess, token, nil
}

var (
	dummyOnce sync.Once
	dummy     []byte
)

func dummyHash(cost int) []byte {
	dummyOnce.Do(func() { dummy, _ = bcrypt.GenerateFromPassword([]byte("lifeline-dummy-password"), cost) })
	return dummy
}

// digest is the stored form of a session token.
func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Session returns the agent and session for a raw cookie token.
func (s *Service) Session(ctx context.Context, token string) (chat.Agent, chat.Session, error) {
	if token == "" || len(token) > 100 {
		return chat.Agent{}, chat.Session{}, ErrNoSession
	}
	sess, err := s.store.Session(ctx, digest(token), s.o.Now())
	if errors.Is(err, chat.ErrNotFound) {
		return chat.Agent{}, chat.Session{}, ErrNoSession
	}
	if err != nil {
		return chat.Agent{}, chat.Session{}, err
	}
	a, err := s.store.Agent(ctx, sess.AgentID)
	if errors.Is(err, chat.ErrNotFound) || (err == nil && a.Disabled) {
		return chat.Agent{}, chat.Session{}, ErrNoSession
	}
	if err != nil {
		return chat.Agent{}, chat.Session{}, err
	}
	return a, sess, nil
}

// Logout deletes the session for token.
func (s *Service) Logout(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return s.store.DeleteSession(ctx, digest(token))
}

// validCSRF compares tokens in constant time.
func validCSRF(sess chat.Session, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(sess.CSRF), []byte(got)) == 1
}
