package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
)

// Limits on what Artifacts lists.
const (
	MaxArtifactSize  = 1 << 30
	MaxArtifactFiles = 10000
)

// Errors from Artifacts.
var (
	ErrArtifactTooLarge = errors.New("runner: artifact too large")
	ErrTooManyArtifacts = errors.New("runner: too many artifacts")
)

// File is one file of an output directory to upload.
type File struct {
	// Name is the path relative to the output directory, with slashes.
	Name string
	// Path is the file's path on this host.
	Path string
	Size int64
}

// Artifacts lists the regular files in an autopkgtest output directory:
// the main log first, then every other file (per-test output, summary,
// testinfo.json, testpkg-version, package lists, artifacts/...) sorted by
// name. Symbolic links, directories and special files are skipped, and
// symbolic links are never followed, so nothing outside the directory is
// listed. A file larger than MaxArtifactSize, or more than
// MaxArtifactFiles files, is an error.
func Artifacts(outputDir string) ([]File, error) {
	root, err := filepath.Abs(outputDir)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	var files []File
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if info.Size() > MaxArtifactSize {
			return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrArtifactTooLarge, rel, info.Size(), MaxArtifactSize)
		}
		if len(files) == MaxArtifactFiles {
			return fmt.Errorf("%w: more than %d files", ErrTooManyArtifacts, MaxArtifactFiles)
		}
		files = append(files, File{Name: filepath.ToSlash(rel), Path: path, Size: info.Size()})
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrArtifactTooLarge) || errors.Is(err, ErrTooManyArtifacts) {
			return nil, err
		}
		return nil, fmt.Errorf("runner: artifacts: %w", err)
	}
	sort.Slice(files, func(i, j int) bool {
		li, lj := files[i].Name == LogFile, files[j].Name == LogFile
		if li != lj {
			return li
		}
		return files[i].Name < files[j].Name
	})
	return files, nil
}
