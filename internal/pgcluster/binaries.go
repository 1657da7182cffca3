package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// minVersion is the oldest PostgreSQL major version Candor runs on.
const minVersion = 13

// libGlob is where Debian and Ubuntu install each major version's server
// binaries; they are not on PATH there.
const libGlob = "/usr/lib/postgresql/*/bin"

// FindBinaries returns the directory holding pg_ctl, initdb and postgres and
// their major version. It looks on PATH first, then in /usr/lib/postgresql/*/bin
// newest first, and takes the first set that is PostgreSQL 13 or newer.
func FindBinaries() (binDir string, version int, err error) {
	return findBinaries(os.Getenv("PATH"), libGlob, 0)
}

// findBinaries is FindBinaries with its search places as arguments. When want
// is not 0 it takes only that major version: an existing data directory can
// only be served by the version that created it.
func findBinaries(pathList, glob string, want int) (string, int, error) {
	var dirs []string
	for _, d := range filepath.SplitList(pathList) {
		if d == "" || !filepath.IsAbs(d) {
			continue // a relative PATH entry would depend on the working directory
		}
		// Resolve symlinks (/usr/local/bin/postgres -> /usr/lib/postgresql/15/bin/postgres):
		// initdb and pg_ctl must come from the same installation as postgres.
		p, err := filepath.EvalSymlinks(filepath.Join(d, "postgres"))
		if err != nil || !isExecutable(p) {
			continue
		}
		if dir := filepath.Dir(p); hasServerBinaries(dir) && !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	libDirs, _ := filepath.Glob(glob)
	slices.SortFunc(libDirs, func(a, b string) int {
		// Newest first, numerically: 9.6 < 13 < 16.
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, dir := range libDirs {
		if hasServerBinaries(dir) && !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}

	const install = "install the Debian package postgresql (apt-get install postgresql)"
	if len(dirs) == 0 {
		return "", 0, fmt.Errorf("no PostgreSQL server binaries found (looked in PATH and %s): %s", glob, install)
	}
	var found []string
	for _, dir := range dirs {
		v, err := serverVersion(dir)
		if err != nil {
			found = append(found, fmt.Sprintf("%s (%v)", dir, err))
			continue
		}
		found = append(found, fmt.Sprintf("%s (PostgreSQL %d)", dir, v))
		if (want == 0 && v >= minVersion) || (want != 0 && v == want) {
			return dir, v, nil
		}
	}
	if want != 0 {
		return "", 0, fmt.Errorf("no PostgreSQL %d server binaries found (found %s): install the Debian package postgresql-%d", want, strings.Join(found, ", "), want)
	}
	return "", 0, fmt.Errorf("no PostgreSQL %d or newer server binaries found (found %s): %s", minVersion, strings.Join(found, ", "), install)
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"postgres", "initdb", "pg_ctl"} {
		if !isExecutable(filepath.Join(dir, name)) {
			return false
		}
	}
	return true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// serverVersion runs "postgres --version", which works even as root.
func serverVersion(dir string) (int, error) {
	out, err := exec.Command(filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("postgres --version: %w", err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("postgres --version printed %q", strings.TrimSpace(string(out)))
	}
	return strconv.Atoi(string(m[1]))
}

// dataVersion reads the major version that created a data directory, or 0
// when there is none yet.
func dataVersion(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	major, _, _ := strings.Cut(s, ".") // "9.6" before PostgreSQL 10
	v, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("%s/PG_VERSION holds %q", dataDir, s)
	}
	return v, nil
}

// compareVersions orders "9.6", "13", "16" numerically; non-numbers sort first.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
