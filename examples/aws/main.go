// Aws shows AWS temporary credentials with tokenmgr, offline: an OIDC
// issuer (tokenmgrtest) gives a workload its token, an in-process STS
// (awscreds/ststest, which verifies the SigV4 signature of every signed
// request from the AWS specification) exchanges it for session
// credentials with AssumeRoleWithWebIdentity, and:
//
//  1. the real aws-sdk-go-v2 STS client, set up with Provider.Configure,
//     calls GetCallerIdentity signed with them;
//  2. the role's sessions are revoked: the SDK's own web identity
//     provider behind its CredentialsCache fails the next call with
//     InvalidClientTokenId, while the Configure'd client recovers with one
//     STS call and one replay;
//  3. a plain http.Client whose Transport is Provider.Transport sends
//     SigV4-signed POSTs, and after another revocation replays one with a
//     fresh signature and its body intact.
//
// It prints what happened and exits non-zero if any of that did not.
//
//	cd examples/aws && go run .
//
// It is its own module, so that the root module does not require the AWS
// SDK.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

const role = "arn:aws:iam::123456789012:role/app"

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()

	// The workload's OIDC identity: client credentials at an issuer.
	issuer := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer issuer.Close()
	oidc, err := tokenmgr.New(tokenmgr.Config{Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
		ClientID: issuer.ClientID, ClientSecret: issuer.ClientSecret, TokenURL: issuer.TokenURL(),
	})})
	if err != nil {
		return err
	}
	defer oidc.Close()

	// STS trusts the issuer's tokens.
	stsSrv := ststest.NewServer()
	defer stsSrv.Close()
	stsSrv.CheckWebIdentity = func(tok string) *ststest.Error {
		if !issuer.Valid(tok) {
			return ststest.ErrInvalidIdentityToken
		}
		return nil
	}

	p, err := awscreds.New(awscreds.Config{
		RoleARN:     role,
		WebIdentity: oidc.TokenSource(),
		Region:      "us-east-1",
		STSEndpoint: stsSrv.URL, // in production: the regional endpoint, or AWS_ENDPOINT_URL_STS
	})
	if err != nil {
		return err
	}
	defer p.Close()

	// 1. The SDK with Configure.
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(stsSrv.URL)}
	p.Configure(&cfg)
	ours := sts.NewFromConfig(cfg)
	id, err := ours.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return err
	}
	fmt.Printf("1. GetCallerIdentity with Configure: account %s, %s\n", aws.ToString(id.Account), aws.ToString(id.Arn))

	// The SDK's own web identity provider, for comparison.
	plainCfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(stsSrv.URL)}
	plainCfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(
		sts.NewFromConfig(plainCfg), role, oidcRetriever{oidc}))
	plain := sts.NewFromConfig(plainCfg)
	if _, err := plain.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		return err
	}

	// 2. Revocation.
	stsSrv.RevokeAll()
	before := stsSrv.AssumeCalls()
	_, plainErr := plain.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	var ae smithy.APIError
	if !errors.As(plainErr, &ae) || ae.ErrorCode() != "InvalidClientTokenId" {
		return fmt.Errorf("the plain SDK client after revocation: %v; want InvalidClientTokenId", plainErr)
	}
	fmt.Printf("2. after revocation, plain SDK CredentialsCache: %s\n", ae.ErrorCode())
	if _, err := ours.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		return fmt.Errorf("configure did not recover: %w", err)
	}
	fmt.Printf("   after revocation, Configure: OK with %d STS call and %d replay\n",
		stsSrv.AssumeCalls()-before, p.Stats().Replays)
	if stsSrv.AssumeCalls()-before != 1 || p.Stats().Replays != 1 {
		return errors.New("want one STS call and one replay")
	}

	// 3. SigV4 on a plain http.Client.
	hc := &http.Client{Transport: p.Transport(nil, "execute-api", "us-east-1")}
	post := func() (int, string, error) {
		req, err := http.NewRequest(http.MethodPost, stsSrv.URL+"/items", strings.NewReader(`{"name":"widget"}`))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), err
	}
	status, body, err := post()
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("signed POST: %d %s %v", status, body, err)
	}
	fmt.Printf("3. signed POST: %d (signature verified)\n", status)
	stsSrv.RevokeAll()
	status, body, err = post()
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("signed POST after revocation: %d %s %v", status, body, err)
	}
	fmt.Printf("   after revocation: %d, replayed with a fresh signature; replays in all %d\n", status, p.Stats().Replays)
	if p.Stats().Replays != 2 {
		return errors.New("want a second replay")
	}
	fmt.Printf("STS: %d AssumeRoleWithWebIdentity calls, %d signed requests served, %d rejected\n",
		stsSrv.AssumeCalls(), stsSrv.SignedOK(), stsSrv.Rejected())
	return nil
}

// oidcRetriever gives the SDK's web identity provider the issuer's token.
type oidcRetriever struct{ c *tokenmgr.Client }

func (r oidcRetriever) GetIdentityToken() ([]byte, error) {
	tok, err := r.c.Token(context.Background())
	if err != nil {
		return nil, err
	}
	return []byte(tok.AccessToken), nil
}
