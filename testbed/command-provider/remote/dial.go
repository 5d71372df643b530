package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Backoff between dial attempts: 100 ms, then x1.5 each time, at most 5 s (upstream's
// figures: 10 allowed errors against a refused port give up after ~11 s).
const (
	firstDelay  = 100 * time.Millisecond
	delayFactor = 1.5
	maxDelay    = 5 * time.Second
)

// Defaults of the connection inputs (the schema's defaults, applied again here so a
// state written without them still works).
const (
	defaultPort           = 22
	defaultUser           = "root"
	defaultDialErrorLimit = 10
	defaultPerDialTimeout = 15
)

// delay is the wait after the n-th failed attempt (n counts from 1).
func delay(n int) time.Duration {
	d := float64(firstDelay)
	for i := 1; i < n; i++ {
		d *= delayFactor
		if d >= float64(maxDelay) {
			return maxDelay
		}
	}
	return time.Duration(d)
}

// permanentError marks a dial error that retrying cannot fix (bad key, wrong host key,
// unsupported proxy).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// retry calls attempt until it succeeds, fails permanently, or has failed more than limit
// times (limit < 0: no limit), sleeping delay(n) after the n-th failure. `dialErrorLimit`
// is the number of errors allowed, so limit 10 means up to 11 attempts. status reports
// each failure that will be retried.
func retry[T any](
	ctx context.Context, limit int, attempt func(context.Context) (T, error),
	sleep func(context.Context, time.Duration) error, status func(n int, err error),
) (T, error) {
	var zero T
	for n := 1; ; n++ {
		v, err := attempt(ctx)
		if err == nil {
			return v, nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return zero, perm.err
		}
		if ctx.Err() != nil {
			return zero, fmt.Errorf("%w (after %d attempts, last error: %v)", ctx.Err(), n, err)
		}
		if limit >= 0 && n > limit {
			// Upstream's wording, which counts the retries: limit 3 gives up after 4 dials with
			// "after 3 failed attempts".
			return zero, fmt.Errorf("after %d failed attempts: %w", n-1, err)
		}
		if status != nil {
			status(n, err)
		}
		if serr := sleep(ctx, delay(n)); serr != nil {
			return zero, fmt.Errorf("%w while waiting to dial again (last error: %v)", serr, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dialer is what connecting needs, taken from a Connection with its defaults applied.
type dialer struct {
	address string
	config  *ssh.ClientConfig
	limit   int
	perDial time.Duration
	closers []func() error // agent connections to close with the client
	// hostKeyMismatch is set by the host key callback so a mismatch is not retried.
	hostKeyMismatch bool
}

func intOr(p *int, d int) int {
	if p == nil {
		return d
	}
	return *p
}

// newDialer validates the connection and prepares the SSH client configuration. Problems
// here are the operator's to fix: they are reported at once, never retried.
func newDialer(c Connection) (*dialer, error) {
	if c.Proxy != nil {
		return nil, errors.New("connection.proxy (a bastion host) is not supported by odoo-pulumi's " +
			"stand-in command provider; connect to the host directly")
	}
	if c.Host == "" {
		return nil, errors.New("connection.host is empty")
	}
	port := defaultPort
	if c.Port != nil {
		port = int(*c.Port)
	}
	user := defaultUser
	if c.User != nil && *c.User != "" {
		user = *c.User
	}
	d := &dialer{
		address: net.JoinHostPort(c.Host, strconv.Itoa(port)),
		limit:   intOr(c.DialErrorLimit, defaultDialErrorLimit),
		perDial: time.Duration(intOr(c.PerDialTimeout, defaultPerDialTimeout)) * time.Second,
	}

	var auth []ssh.AuthMethod
	if c.PrivateKey != nil && *c.PrivateKey != "" {
		var signer ssh.Signer
		var err error
		if c.PrivateKeyPassword != nil && *c.PrivateKeyPassword != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*c.PrivateKey), []byte(*c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*c.PrivateKey))
		}
		if err != nil {
			// Never include the key itself.
			return nil, fmt.Errorf("connection.privateKey cannot be used: %w", err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	sock := ""
	if c.AgentSocketPath != nil {
		sock = *c.AgentSocketPath
	} else if len(auth) == 0 && (c.Password == nil || *c.Password == "") {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, fmt.Errorf("connection.agentSocketPath: cannot reach the SSH agent: %w", err)
		}
		d.closers = append(d.closers, conn.Close)
		auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	}
	if c.Password != nil && *c.Password != "" {
		pw := *c.Password
		auth = append(auth, ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(auth) == 0 {
		return nil, errors.New("connection needs a privateKey, a password or an SSH agent")
	}

	hostKeyCallback := ssh.InsecureIgnoreHostKey() // upstream: no hostKey, no check
	if c.HostKey != nil && *c.HostKey != "" {
		want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*c.HostKey))
		if err != nil {
			return nil, fmt.Errorf("connection.hostKey is not a public key in authorized_keys format: %w", err)
		}
		fixed := ssh.FixedHostKey(want)
		hostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
			if err := fixed(host, remote, key); err != nil {
				d.hostKeyMismatch = true
				return fmt.Errorf("the host key of %s (%s %s) is not connection.hostKey",
					host, key.Type(), ssh.FingerprintSHA256(key))
			}
			return nil
		}
	}
	d.config = &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: hostKeyCallback}
	return d, nil
}

// attempt is one dial: TCP connect and SSH handshake, together bounded by perDialTimeout.
func (d *dialer) attempt(ctx context.Context) (*ssh.Client, error) {
	if d.perDial > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.perDial)
		defer cancel()
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", d.address)
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	// Close the socket if the context ends mid-handshake.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, d.address, d.config)
	stop()
	if err != nil {
		_ = conn.Close()
		if d.hostKeyMismatch {
			return nil, permanent(err)
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// close releases what newDialer opened (the agent connection).
func (d *dialer) close() {
	for _, f := range d.closers {
		_ = f()
	}
}

// dialStatus is the status line of the n-th failed dial that will be retried, upstream's
// words: "Dial 3/10 failed: retrying" (the limit is dialErrorLimit, "inf" for -1; the reason
// is not shown, as upstream).
func dialStatus(n, limit int) string {
	l := "inf"
	if limit >= 0 {
		l = strconv.Itoa(limit)
	}
	return fmt.Sprintf("Dial %d/%s failed: retrying", n, l)
}

// dial connects to the host, retrying as upstream does so a booting server is waited for.
func dial(ctx context.Context, c Connection, status func(string)) (*ssh.Client, func(), error) {
	d, err := newDialer(c)
	if err != nil {
		return nil, nil, err
	}
	client, err := retry(ctx, d.limit, d.attempt, sleepCtx, func(n int, _ error) {
		if status != nil {
			status(dialStatus(n, d.limit))
		}
	})
	if err != nil {
		d.close()
		return nil, nil, err
	}
	return client, func() { _ = client.Close(); d.close() }, nil
}
