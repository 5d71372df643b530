package run

import (
	"crypto/rand"
	"encoding/hex"
)

// NewID names a created resource: its name plus a random suffix, so that a replacement
// (created before the old one is deleted) never collides with it.
func NewID(name string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return name + "-" + hex.EncodeToString(b)
}
