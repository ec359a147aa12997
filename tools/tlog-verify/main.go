// tlog-verify checks the receipt log's checkpoints, proofs and tiles with the Go checksum
// database's own transparency-log code (golang.org/x/mod/sumdb/tlog and sumdb/note), an
// implementation this project did not write. It reads one JSON request (file argument or stdin)
// and prints one JSON result per item; it exits 0 when it could answer, whatever the answers.
//
// Request:
//
//	{"vkey": "<name>+<id>+<key>",
//	 "checkpoints": ["<signed note>", ...],
//	 "inclusion": [{"checkpoint": 0, "index": 5, "data": "<base64 leaf data>", "proof": ["<base64>", ...]}],
//	 "consistency": [{"older": 0, "newer": 1, "proof": ["<base64>", ...]}],
//	 "tiles": [{"dir": "<folder holding tile/...>", "checkpoint": 1, "indexes": [0, 7], "data": ["<base64>", ...]}]}
//
// Each tiles item answers first for the root rebuilt from the tiles, then once per index, then once
// per older checkpoint (consistency proved from the tiles alone).
//
// Tiles are read by their C2SP tlog-tiles paths (tile/<L>/<N>[.p/<W>], height 8) and every
// tile read is checked against the checkpoint's root (tlog.TileHashReader).
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Checkpoint int      `json:"checkpoint"`
	Index      int64    `json:"index"`
	Data       string   `json:"data"`
	Proof      []string `json:"proof"`
}

type consistency struct {
	Older int      `json:"older"`
	Newer int      `json:"newer"`
	Proof []string `json:"proof"`
}

type tiles struct {
	Dir        string   `json:"dir"`
	Checkpoint int      `json:"checkpoint"`
	Indexes    []int64  `json:"indexes"`
	Data       []string `json:"data"`
	// Older checkpoints this one must be consistent with, the proof built from the tiles alone.
	Older []int `json:"older"`
}

type request struct {
	Vkey        string        `json:"vkey"`
	Checkpoints []string      `json:"checkpoints"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
	Tiles       []tiles       `json:"tiles"`
}

type answer struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Size  int64  `json:"size,omitempty"`
	Root  string `json:"root,omitempty"`
}

type result struct {
	Checkpoints []answer `json:"checkpoints"`
	Inclusion   []answer `json:"inclusion"`
	Consistency []answer `json:"consistency"`
	Tiles       []answer `json:"tiles"`
}

func fail(err error) answer { return answer{Error: err.Error()} }

// openCheckpoint verifies the note's signature and parses the C2SP checkpoint text.
func openCheckpoint(text string, verifiers note.Verifiers) (tlog.Tree, error) {
	n, err := note.Open([]byte(text), verifiers)
	if err != nil {
		return tlog.Tree{}, err
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return tlog.Tree{}, errors.New("checkpoint: fewer than three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || lines[1] != strconv.FormatInt(size, 10) {
		return tlog.Tree{}, fmt.Errorf("checkpoint: bad size %q", lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint: bad root %q", lines[2])
	}
	return tlog.Tree{N: size, Hash: root}, nil
}

func hashes(b64 []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(b64))
	for i, s := range b64 {
		h, err := tlog.ParseHash(s)
		if err != nil {
			return nil, fmt.Errorf("proof[%d]: %v", i, err)
		}
		out[i] = h
	}
	return out, nil
}

// fileTiles reads tiles from a folder by their C2SP paths.
type fileTiles struct{ dir string }

func (f fileTiles) Height() int { return 8 }

func (f fileTiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		// Go's path is tile/8/<L>/<N>...; C2SP's leaves out the height.
		p := strings.Replace(t.Path(), "tile/8/", "tile/", 1)
		data, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (f fileTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func main() {
	var in io.Reader = os.Stdin
	if len(os.Args) > 1 {
		file, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer file.Close()
		in = file
	}
	var req request
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "request:", err)
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(req.Vkey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vkey:", err)
		os.Exit(2)
	}
	verifiers := note.VerifierList(verifier)

	res := result{Checkpoints: []answer{}, Inclusion: []answer{}, Consistency: []answer{}, Tiles: []answer{}}
	trees := make([]*tlog.Tree, len(req.Checkpoints))
	for i, text := range req.Checkpoints {
		tree, err := openCheckpoint(text, verifiers)
		if err != nil {
			res.Checkpoints = append(res.Checkpoints, fail(err))
			continue
		}
		trees[i] = &tree
		res.Checkpoints = append(res.Checkpoints, answer{OK: true, Size: tree.N, Root: tree.Hash.String()})
	}
	treeAt := func(i int) (*tlog.Tree, error) {
		if i < 0 || i >= len(trees) || trees[i] == nil {
			return nil, fmt.Errorf("checkpoint %d did not open", i)
		}
		return trees[i], nil
	}

	for _, inc := range req.Inclusion {
		res.Inclusion = append(res.Inclusion, func() answer {
			tree, err := treeAt(inc.Checkpoint)
			if err != nil {
				return fail(err)
			}
			data, err := base64.StdEncoding.DecodeString(inc.Data)
			if err != nil {
				return fail(fmt.Errorf("data: %v", err))
			}
			proof, err := hashes(inc.Proof)
			if err != nil {
				return fail(err)
			}
			if err := tlog.CheckRecord(proof, tree.N, tree.Hash, inc.Index, tlog.RecordHash(data)); err != nil {
				return fail(err)
			}
			return answer{OK: true}
		}())
	}

	for _, c := range req.Consistency {
		res.Consistency = append(res.Consistency, func() answer {
			older, err := treeAt(c.Older)
			if err != nil {
				return fail(err)
			}
			newer, err := treeAt(c.Newer)
			if err != nil {
				return fail(err)
			}
			proof, err := hashes(c.Proof)
			if err != nil {
				return fail(err)
			}
			if err := tlog.CheckTree(proof, newer.N, newer.Hash, older.N, older.Hash); err != nil {
				return fail(err)
			}
			return answer{OK: true}
		}())
	}

	for _, t := range req.Tiles {
		tree, err := treeAt(t.Checkpoint)
		if err != nil {
			res.Tiles = append(res.Tiles, fail(err))
			for range len(t.Indexes) + len(t.Older) {
				res.Tiles = append(res.Tiles, fail(err))
			}
		} else {
			reader := tlog.TileHashReader(*tree, fileTiles{t.Dir})
			root, err := tlog.TreeHash(tree.N, reader)
			switch {
			case err != nil:
				res.Tiles = append(res.Tiles, fail(fmt.Errorf("root from tiles: %v", err)))
			case root != tree.Hash:
				res.Tiles = append(res.Tiles, fail(errors.New("root from tiles differs from the checkpoint")))
			default:
				res.Tiles = append(res.Tiles, answer{OK: true, Size: tree.N, Root: root.String()})
			}
			for i, index := range t.Indexes {
				res.Tiles = append(res.Tiles, func() answer {
					if i >= len(t.Data) {
						return fail(errors.New("no data for this index"))
					}
					data, err := base64.StdEncoding.DecodeString(t.Data[i])
					if err != nil {
						return fail(fmt.Errorf("data: %v", err))
					}
					proof, err := tlog.ProveRecord(tree.N, index, reader)
					if err != nil {
						return fail(fmt.Errorf("proof from tiles: %v", err))
					}
					if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(data)); err != nil {
						return fail(err)
					}
					return answer{OK: true}
				}())
			}
			for _, o := range t.Older {
				res.Tiles = append(res.Tiles, func() answer {
					older, err := treeAt(o)
					if err != nil {
						return fail(err)
					}
					proof, err := tlog.ProveTree(tree.N, older.N, reader)
					if err != nil {
						return fail(fmt.Errorf("consistency proof from tiles: %v", err))
					}
					if err := tlog.CheckTree(proof, tree.N, tree.Hash, older.N, older.Hash); err != nil {
						return fail(err)
					}
					return answer{OK: true, Size: older.N}
				}())
			}
		}
	}

	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
