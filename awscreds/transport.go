package awscreds

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ErrBodyNotRewindable is returned for a request whose body cannot be
// read twice (GetBody is nil) and that has no X-Amz-Content-Sha256 header:
// SigV4 signs the payload's hash, so the body would have to be read once
// for the hash and once more to send it.
var ErrBodyNotRewindable = errors.New("awscreds: request body cannot be rewound (set GetBody, as http.NewRequest does for bytes and strings readers, or the X-Amz-Content-Sha256 header)")

// emptyHash is the SHA-256 of an empty payload.
const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Transport returns an http.RoundTripper that SigV4-signs each request
// sent through base (nil: http.DefaultTransport) for service in region
// with the current credentials (aws-sdk-go-v2's aws/signer/v4). The
// payload hash is taken from the X-Amz-Content-Sha256 header when the
// caller set one (S3's UNSIGNED-PAYLOAD, say), else computed from a fresh
// copy of the body from req.GetBody; for "s3" the header is set, as S3
// requires. It is the tokenmgr transport underneath: when an answer
// carries one of RetryCodes, the credentials it was signed with are
// dropped (compare-and-swap), fresh ones fetched once for all callers, and
// the request replayed once with a new signature and a fresh body; a
// second rejection is returned as it came and damps further replays. The
// credentials go only over https, or plain http to loopback, and never on
// a redirect to another host.
func (p *Provider) Transport(base http.RoundTripper, service, region string) http.RoundTripper {
	t := &target{service: service, region: region, s3: service == "s3"}
	return p.c.Transport(base, func(r *http.Request, creds aws.Credentials) error { return p.sign(r, creds, t) })
}

type target struct {
	service, region string
	s3              bool
}

var (
	sdkSigner = v4.NewSigner()
	s3Signer  = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
)

// sign signs r for t with creds. r is the transport's copy of the
// caller's request, with a header map and a URL of its own (the signer
// rewrites RawQuery); the header's value slices are the caller's.
func (p *Provider) sign(r *http.Request, creds aws.Credentials, t *target) error {
	p.converted(&creds) // handed out: see converted
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		var err error
		if hash, err = payloadHash(r); err != nil {
			return err
		}
		if t.s3 {
			r.Header["X-Amz-Content-Sha256"] = []string{hash}
		}
	}
	delete(r.Header, "Authorization") // the signer appends to this slice, which may be the caller's
	s := sdkSigner
	if t.s3 {
		s = s3Signer
	}
	if err := s.SignHTTP(r.Context(), creds, r, hash, t.service, t.region, p.now()); err != nil {
		return fmt.Errorf("awscreds: signing: %w", err)
	}
	return nil
}

// payloadHash hashes a fresh copy of the body.
func payloadHash(r *http.Request) (string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return emptyHash, nil
	}
	if r.GetBody == nil {
		return "", ErrBodyNotRewindable
	}
	b, err := r.GetBody()
	if err != nil {
		return "", fmt.Errorf("awscreds: rewinding the request body: %w", err)
	}
	defer b.Close()
	h := sha256.New()
	if _, err := io.Copy(h, b); err != nil {
		return "", fmt.Errorf("awscreds: reading the request body: %w", err)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])), nil
}
