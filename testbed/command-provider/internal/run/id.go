package run

import (
	"crypto/rand"
	"encoding/hex"
)

// NewID names a created Command as upstream does: its name followed by 8 random hex digits,
// no separator ("odoo-wait1a2b3c4d"), so that a replacement (created before the old one is
// deleted) never collides with it.
func NewID(name string) string {
	return name + randomHex()
}

// NewCopyID is a CopyToRemote's ID: 8 random hex digits alone, as upstream.
func NewCopyID() string {
	return randomHex()
}

func randomHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
