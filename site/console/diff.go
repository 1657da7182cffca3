package console

import "strings"

// diffLine is one line of a diff between two note versions.
type diffLine struct {
	Op   byte // ' ', '+' or '-'
	Text string
}

// maxDiffCells bounds the work of a diff (lines before × lines after).
const maxDiffCells = 4 << 20

// lineDiff returns a line diff from a to b by longest common subsequence,
// after trimming the common head and tail; nil when the texts are too far
// apart and too long to compare cheaply.
func lineDiff(a, b string) []diffLine {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	var head, tail []diffLine
	for len(x) > 0 && len(y) > 0 && x[0] == y[0] {
		head = append(head, diffLine{' ', x[0]})
		x, y = x[1:], y[1:]
	}
	for len(x) > 0 && len(y) > 0 && x[len(x)-1] == y[len(y)-1] {
		tail = append([]diffLine{{' ', x[len(x)-1]}}, tail...)
		x, y = x[:len(x)-1], y[:len(y)-1]
	}
	if (len(x)+1)*(len(y)+1) > maxDiffCells {
		return nil
	}
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	out := head
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out = append(out, diffLine{' ', x[i]})
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, diffLine{'-', x[i]})
			i++
		default:
			out = append(out, diffLine{'+', y[j]})
			j++
		}
	}
	return append(out, tail...)
}

// diffContext keeps the changed lines and n unchanged lines around each
// change; a run of unchanged lines left out becomes one line with Op '…'.
func diffContext(d []diffLine, n int) []diffLine {
	keep := make([]bool, len(d))
	for i, l := range d {
		if l.Op != ' ' {
			for j := max(0, i-n); j <= min(len(d)-1, i+n); j++ {
				keep[j] = true
			}
		}
	}
	var out []diffLine
	for i, l := range d {
		switch {
		case keep[i]:
			out = append(out, l)
		case len(out) == 0 || out[len(out)-1].Op != '~':
			out = append(out, diffLine{'~', "…"})
		}
	}
	return out
}
