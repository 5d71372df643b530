package run

import (
	"regexp"
	"testing"
)

// IDs have upstream's shape: a Command's is its name and 8 hex digits with no separator, a
// CopyToRemote's 8 hex digits; two creations never share one.
func TestIDShape(t *testing.T) {
	cmd := regexp.MustCompile(`^odoo-wait[0-9a-f]{8}$`)
	cp := regexp.MustCompile(`^[0-9a-f]{8}$`)
	a, b := NewID("odoo-wait"), NewID("odoo-wait")
	if !cmd.MatchString(a) || !cmd.MatchString(b) || a == b {
		t.Errorf("Command IDs %q, %q", a, b)
	}
	c, d := NewCopyID(), NewCopyID()
	if !cp.MatchString(c) || !cp.MatchString(d) || c == d {
		t.Errorf("CopyToRemote IDs %q, %q", c, d)
	}
}
