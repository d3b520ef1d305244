package emulator

// The emulated pool identity. Batch retired task authentication tokens
// (authenticationTokenSettings) on 30 September 2024: a task reaches Batch
// with a managed identity of its pool, which Azure Resource Manager
// assigns. With Options.PoolIdentity every pool has that user-assigned
// identity, and every task on it finds the managed-identity endpoint in
// IDENTITY_ENDPOINT and IDENTITY_HEADER, as on App Service, which is what
// azidentity's ManagedIdentityCredential reads. The endpoint serves
// tokens for the Batch resource, valid only for the jobs of the task's
// pool: enough for a job manager task, and no more.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// identityPath is the managed-identity endpoint's path for a pool.
const identityPath = "/identity/pools/"

// batchResource is the resource a Batch token is for.
const batchResource = "https://batch.core.windows.net/"

// miTokenLifetime is how long an identity token lasts.
const miTokenLifetime = time.Hour

// poolIdentity is the identity a pool is given, nil for none.
func (s *Server) poolIdentity() *PoolIdentity {
	if s.opt.PoolIdentity == "" {
		return nil
	}
	return &PoolIdentity{Type: "UserAssigned", UserAssignedIdentities: []UserAssignedIdentity{{
		ResourceID: s.opt.PoolIdentity, ClientID: s.identityGUID("client"), PrincipalID: s.identityGUID("principal"),
	}}}
}

// identityGUID is a stable GUID-shaped id of the emulated identity.
func (s *Server) identityGUID(kind string) string {
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(kind + "\x00" + strings.ToLower(s.opt.PoolIdentity)))
	b := m.Sum(nil)
	const hex = "0123456789abcdef"
	var out []byte
	for i, c := range b[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

// identityHeader is the secret a task of the pool shows the endpoint
// (X-IDENTITY-HEADER): only tasks of that pool have it.
func (s *Server) identityHeader(poolID string) string {
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte("identity header\x00" + lower(poolID)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// identityEnv are the variables a task on a pool with an identity gets.
func (s *Server) identityEnv(p *pool) map[string]string {
	if p.wire.Identity == nil || len(p.wire.Identity.UserAssignedIdentities) == 0 {
		return nil
	}
	return map[string]string{
		"IDENTITY_ENDPOINT": s.endpointURL() + identityPath + p.wire.ID + "/token",
		"IDENTITY_HEADER":   s.identityHeader(p.wire.ID),
	}
}

// serveIdentity answers a token request of the App Service managed
// identity protocol (api-version 2019-08-01): GET with resource and
// optionally mi_res_id, client_id or principal_id naming the identity.
func (s *Server) serveIdentity(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]any{"statusCode": status, "message": msg})
		w.Write(b)
	}
	poolID, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, identityPath), "/token")
	if !ok || poolID == "" || strings.Contains(poolID, "/") || r.Method != http.MethodGet {
		fail(http.StatusNotFound, "no such identity endpoint")
		return
	}
	if !hmac.Equal([]byte(r.Header.Get("X-IDENTITY-HEADER")), []byte(s.identityHeader(poolID))) {
		fail(http.StatusUnauthorized, "the X-IDENTITY-HEADER header is missing or wrong")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") != "2019-08-01" {
		fail(http.StatusBadRequest, "api-version must be 2019-08-01")
		return
	}
	if res := strings.TrimSuffix(q.Get("resource"), "/.default"); strings.TrimSuffix(res, "/") != strings.TrimSuffix(batchResource, "/") {
		fail(http.StatusBadRequest, "the emulated identity has tokens only for "+batchResource)
		return
	}
	s.mu.Lock()
	p := s.pools[lower(poolID)]
	var id *PoolIdentity
	if p != nil {
		id = p.wire.Identity
	}
	s.mu.Unlock()
	if id == nil || len(id.UserAssignedIdentities) == 0 {
		fail(http.StatusBadRequest, "pool "+poolID+" has no managed identity")
		return
	}
	ua := id.UserAssignedIdentities[0]
	for k, want := range map[string]string{"mi_res_id": ua.ResourceID, "client_id": ua.ClientID, "principal_id": ua.PrincipalID} {
		if v := q.Get(k); v != "" && !strings.EqualFold(v, want) {
			fail(http.StatusBadRequest, "the identity "+k+" "+v+" is not assigned to pool "+poolID)
			return
		}
	}
	exp := time.Now().Add(miTokenLifetime)
	b, _ := json.Marshal(map[string]string{
		"access_token": s.issuePoolToken(poolID, exp),
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     batchResource,
		"token_type":   "Bearer",
		"client_id":    ua.ClientID,
	})
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
