package media

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFilenameBytes bounds a sanitised filename; most filesystems allow 255.
const maxFilenameBytes = 200

// SanitizeFilename turns a client-supplied file name into one that is safe
// to show, to put in a URL path segment and a Content-Disposition header, and
// to save on any desktop OS. It keeps only the last path element, replaces
// control, format (bidirectional overrides, zero-width) and reserved
// characters and white space with '_', strips leading dots and trailing dots,
// truncates long names keeping the extension, and never returns "", "." or
// "..": a name with nothing left becomes "file". It is idempotent. Stored
// bytes are content-addressed, so the name never reaches a filesystem path.
func SanitizeFilename(name string) string {
	name = strings.ToValidUTF8(name, "_")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.IsSpace(r),
			r == utf8.RuneError, strings.ContainsRune(`<>:"/\|?*%;`, r):
			b.WriteRune('_')
		default:
			b.WriteRune(r)
		}
	}
	name = trimName(b.String())
	if isReservedWindowsName(name) {
		name = "_" + name
	}
	if len(name) > maxFilenameBytes {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		stem := name[:len(name)-len(ext)]
		stem = truncateUTF8(stem, maxFilenameBytes-len(ext))
		name = trimName(stem + ext)
	}
	if name == "" {
		return "file"
	}
	return name
}

func trimName(s string) string {
	s = strings.TrimLeft(s, ".")
	return strings.TrimRight(s, ". ")
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// isReservedWindowsName reports device names Windows will not save as files
// whatever the extension (CON, NUL, COM1, ...).
func isReservedWindowsName(name string) bool {
	stem, _, _ := strings.Cut(name, ".")
	switch strings.ToUpper(stem) {
	case "CON", "PRN", "AUX", "NUL",
		"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
		"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9":
		return true
	}
	return false
}
