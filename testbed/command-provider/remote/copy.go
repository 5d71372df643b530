package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi-go-provider/infer/types"

	"odoo-pulumi/testbed/command-provider/internal/run"
)

// CopyToRemote is `command:remote:CopyToRemote`: copy a file or a directory to the host
// over SFTP, as the connection's user. Nothing is removed on delete.
type CopyToRemote struct{}

// CopyToRemoteInputs are the inputs, named as upstream's schema.
type CopyToRemoteInputs struct {
	Connection Connection           `pulumi:"connection" provider:"secret"`
	Triggers   []any                `pulumi:"triggers,optional" provider:"replaceOnChanges"`
	Source     types.AssetOrArchive `pulumi:"source"`
	RemotePath string               `pulumi:"remotePath"`
}

// CopyToRemoteOutputs repeat the inputs.
type CopyToRemoteOutputs struct {
	CopyToRemoteInputs
}

// Annotate describes the resource.
func (c *CopyToRemote) Annotate(a infer.Annotator) {
	a.Describe(&c, "Copy a local file or directory to a remote host over SFTP (odoo-pulumi's "+
		"stand-in for pulumi-command's remote.CopyToRemote). Re-copied when the source's hash "+
		"or remotePath changes; nothing is removed on delete.")
}

// Annotate describes the inputs.
func (c *CopyToRemoteInputs) Annotate(a infer.Annotator) {
	a.Describe(&c.Connection, "The parameters with which to connect to the remote host.")
	a.Describe(&c.Triggers, "Trigger replacements on changes to this input.")
	a.Describe(&c.Source, "The source: a FileAsset, StringAsset or FileArchive (a directory, "+
		"or a file copied as it is).")
	a.Describe(&c.RemotePath, "The destination path on the remote host. Parent directories are "+
		"created. When it is an existing directory, the source is copied into it.")
}

// Create copies (not on preview).
func (CopyToRemote) Create(ctx context.Context, req infer.CreateRequest[CopyToRemoteInputs]) (
	infer.CreateResponse[CopyToRemoteOutputs], error,
) {
	out := CopyToRemoteOutputs{req.Inputs}
	if req.DryRun { // upstream answers a preview with no ID
		return infer.CreateResponse[CopyToRemoteOutputs]{Output: out}, nil
	}
	if err := copyToRemote(ctx, req.Inputs); err != nil {
		return infer.CreateResponse[CopyToRemoteOutputs]{}, err
	}
	return infer.CreateResponse[CopyToRemoteOutputs]{ID: run.NewCopyID(), Output: out}, nil
}

// Update copies again only when the source's content (hash) or remotePath changed, as upstream:
// a new connection alone (another host) copies nothing.
func (CopyToRemote) Update(ctx context.Context, req infer.UpdateRequest[CopyToRemoteInputs, CopyToRemoteOutputs]) (
	infer.UpdateResponse[CopyToRemoteOutputs], error,
) {
	old := req.State.CopyToRemoteInputs
	if !req.DryRun && (sourceHash(req.Inputs.Source) != sourceHash(old.Source) || req.Inputs.RemotePath != old.RemotePath) {
		if err := copyToRemote(ctx, req.Inputs); err != nil {
			return infer.UpdateResponse[CopyToRemoteOutputs]{}, err
		}
	}
	return infer.UpdateResponse[CopyToRemoteOutputs]{Output: CopyToRemoteOutputs{req.Inputs}}, nil
}

// sourceHash is the content hash of the source asset or archive.
func sourceHash(src types.AssetOrArchive) string {
	switch {
	case src.Archive != nil:
		return src.Archive.Hash
	case src.Asset != nil:
		return src.Asset.Hash
	}
	return ""
}

func copyToRemote(ctx context.Context, in CopyToRemoteInputs) error {
	if in.RemotePath == "" {
		return errors.New("remotePath is empty")
	}
	logger := p.GetLogger(ctx)
	client, closeClient, err := dial(ctx, in.Connection, logger.InfoStatus)
	if err != nil {
		return err
	}
	defer closeClient()
	sc, err := sftp.NewClient(client)
	if err != nil {
		return fmt.Errorf("cannot start SFTP on the remote host: %w", err)
	}
	defer sc.Close()
	// Interrupt a long copy when the operation is cancelled or times out.
	stop := context.AfterFunc(ctx, func() { _ = sc.Close(); _ = client.Close() })
	defer stop()

	src := in.Source
	switch {
	case src.Asset != nil && src.Archive != nil:
		return errors.New("source: both an asset and an archive")
	case src.Asset != nil:
		a := src.Asset
		switch {
		case a.IsPath():
			return copyLocalPath(sc, a.Path, in.RemotePath)
		case a.IsText():
			dest := in.RemotePath
			if isRemoteDir(sc, dest) {
				return fmt.Errorf("remotePath %s is a directory and a StringAsset has no file name", dest)
			}
			return writeRemoteFile(sc, strings.NewReader(a.Text), dest, 0o644)
		default:
			return errors.New("source: only FileAsset and StringAsset are supported (not a remote asset)")
		}
	case src.Archive != nil:
		a := src.Archive
		if !a.IsPath() {
			return errors.New("source: only a FileArchive (a local path) is supported")
		}
		return copyLocalPath(sc, a.Path, in.RemotePath)
	}
	return errors.New("source: an asset or an archive is required")
}

func isRemoteDir(sc *sftp.Client, p string) bool {
	fi, err := sc.Stat(p)
	return err == nil && fi.IsDir()
}

// copyLocalPath copies a local file or directory tree to dest, or into dest when dest is
// an existing remote directory.
func copyLocalPath(sc *sftp.Client, local, dest string) error {
	fi, err := os.Stat(local)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if isRemoteDir(sc, dest) {
		dest = path.Join(dest, filepath.Base(filepath.Clean(local)))
	}
	if !fi.IsDir() {
		f, err := os.Open(local)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		defer f.Close()
		return writeRemoteFile(sc, f, dest, fi.Mode().Perm())
	}
	return filepath.WalkDir(local, func(lp string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		rel, err := filepath.Rel(local, lp)
		if err != nil {
			return err
		}
		target := path.Join(dest, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		switch {
		case d.IsDir():
			if err := sc.MkdirAll(target); err != nil {
				return fmt.Errorf("cannot create remote directory %s: %w", target, err)
			}
			return sc.Chmod(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			f, err := os.Open(lp)
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			defer f.Close()
			return writeRemoteFile(sc, f, target, info.Mode().Perm())
		default:
			return nil // sockets, devices, symlinks to elsewhere: skipped
		}
	})
}

// writeRemoteFile writes r to dest (parents created, an existing file overwritten).
func writeRemoteFile(sc *sftp.Client, r io.Reader, dest string, mode os.FileMode) error {
	if err := sc.MkdirAll(path.Dir(dest)); err != nil {
		return fmt.Errorf("cannot create remote directory %s: %w", path.Dir(dest), err)
	}
	f, err := sc.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("cannot write remote file %s: %w", dest, err)
	}
	if _, err := f.ReadFrom(r); err != nil {
		_ = f.Close()
		return fmt.Errorf("cannot write remote file %s: %w", dest, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write remote file %s: %w", dest, err)
	}
	if err := sc.Chmod(dest, mode); err != nil {
		return fmt.Errorf("cannot set the mode of remote file %s: %w", dest, err)
	}
	return nil
}
