// Package oauthtest is the former home of package tokenmgrtest, kept only
// until the branches in flight that still import it have landed; it will
// be deleted.
//
// Deprecated: use [github.com/tokenmgr/tokenmgr/tokenmgrtest].
package oauthtest

import "github.com/tokenmgr/tokenmgr/tokenmgrtest"

// Server is [tokenmgrtest.Server].
type Server = tokenmgrtest.Server

// Options is [tokenmgrtest.Options].
type Options = tokenmgrtest.Options

// AWSInvalidClientTokenId is [tokenmgrtest.AWSInvalidClientTokenId].
const AWSInvalidClientTokenId = tokenmgrtest.AWSInvalidClientTokenId

// New is [tokenmgrtest.NewServer].
func New(opt Options) *Server { return tokenmgrtest.NewServer(opt) }
