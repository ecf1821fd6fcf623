package export

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/inputs"
)

// Cut groups items into shards by source namespace: a namespace with more
// than shardSize images is split into parts, namespaces with fewer than
// minShardSize images are packed together (up to shardSize), and when
// maxShards > 0 and that would make more than maxShards shards, the
// namespaces are spread evenly over at most maxShards shards, kept whole.
// IDs depend only on the namespaces and sizes, so the same scope gives the
// same IDs; they are unique, start with a letter and are DNS labels, as
// Argo node names and pod names need.
func Cut(items []artifacts.Item, shardSize, minShardSize, maxShards int) (artifacts.Plan, map[string][]artifacts.Item) {
	count := map[string]int{}
	for _, it := range items {
		count[inputs.NamespaceOf(it.Source.Repository)]++
	}
	byNS := make(map[string][]artifacts.Item, len(count))
	for _, it := range items {
		ns := inputs.NamespaceOf(it.Source.Repository)
		if byNS[ns] == nil {
			byNS[ns] = make([]artifacts.Item, 0, count[ns]) // each namespace one allocation
		}
		byNS[ns] = append(byNS[ns], it)
	}
	names := make([]string, 0, len(byNS))
	for ns := range byNS {
		names = append(names, ns)
	}
	sort.Strings(names)

	type group struct {
		namespaces []string
		items      []artifacts.Item
		part       int
	}
	// spread: an even spread by image count over at most maxShards shards,
	// namespaces kept whole and in order.
	spread := func() []group {
		var groups []group
		per := (len(items) + maxShards - 1) / maxShards
		var g group
		for _, ns := range names {
			if len(g.items) > 0 && len(g.items)+len(byNS[ns]) > per && len(groups) < maxShards-1 {
				groups = append(groups, g)
				g = group{}
			}
			g.namespaces = append(g.namespaces, ns)
			g.items = append(g.items, byNS[ns]...)
		}
		if len(g.items) > 0 {
			groups = append(groups, g)
		}
		return groups
	}
	// bySize: big namespaces split, small ones packed.
	bySize := func() []group {
		var groups []group
		var pack group
		flush := func() {
			if len(pack.items) > 0 {
				groups = append(groups, pack)
				pack = group{}
			}
		}
		for _, ns := range names {
			its := byNS[ns]
			switch {
			case len(its) > shardSize:
				for p := 0; p*shardSize < len(its); p++ {
					end := min((p+1)*shardSize, len(its))
					groups = append(groups, group{namespaces: []string{ns}, items: its[p*shardSize : end], part: p + 1})
				}
			case len(its) < minShardSize:
				if len(pack.items)+len(its) > shardSize {
					flush()
				}
				pack.namespaces = append(pack.namespaces, ns)
				pack.items = append(pack.items, its...)
			default:
				groups = append(groups, group{namespaces: []string{ns}, items: its})
			}
		}
		flush()
		return groups
	}
	var groups []group
	if maxShards > 0 && len(names) > maxShards {
		groups = spread()
	} else if groups = bySize(); maxShards > 0 && len(groups) > maxShards {
		// Split namespaces would exceed the bound: keep them whole.
		groups = spread()
	}

	// Different names can clean to one label ("my_team", "my.team"), and a
	// namespace can be named like a pack or a part ("a-to-c", "x-p1"):
	// colliding IDs get a hash of what their shard holds.
	ids := make([]string, len(groups))
	uses := map[string]int{}
	for i, g := range groups {
		ids[i] = shardID(g.namespaces, g.part)
		uses[ids[i]]++
	}
	taken := map[string]bool{}
	for i, g := range groups {
		if uses[ids[i]] > 1 {
			base := ids[i]
			for salt := 0; ; salt++ {
				ids[i] = hashedID(base, g.namespaces, g.part, salt)
				if uses[ids[i]] == 0 && !taken[ids[i]] {
					break
				}
			}
		}
		taken[ids[i]] = true
	}

	plan := artifacts.Plan{Total: len(items)}
	shards := map[string][]artifacts.Item{}
	for i, g := range groups {
		id := ids[i]
		plan.Shards = append(plan.Shards, artifacts.Shard{ID: id, Namespaces: g.namespaces, Images: len(g.items), Part: g.part})
		shards[id] = g.items
	}
	sort.Slice(plan.Shards, func(i, j int) bool { return plan.Shards[i].ID < plan.Shards[j].ID })
	return plan, shards
}

var nonLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// shardID: "ns-<namespace>", "ns-<namespace>-p<N>" for parts of a split
// namespace, "ns-<first>-to-<last>" for a pack. At most 52 characters
// (Argo appends suffixes to node names); long names keep a hash.
func shardID(namespaces []string, part int) string {
	clean := func(s string) string {
		s = strings.Trim(nonLabel.ReplaceAllString(strings.ToLower(s), "-"), "-")
		if s == "" {
			s = "x"
		}
		return s
	}
	id := "ns-" + clean(namespaces[0])
	if len(namespaces) > 1 {
		id += "-to-" + clean(namespaces[len(namespaces)-1])
	}
	if part > 0 {
		id += fmt.Sprintf("-p%d", part)
	}
	if len(id) > maxIDLen {
		id = hashedID(id, namespaces, part, 0)
	}
	return id
}

// maxIDLen bounds shard IDs: Argo appends suffixes to node names.
const maxIDLen = 52

// hashedID is id cut to leave room for a hash of the shard's namespaces and
// part (and salt, when not 0), then that hash.
func hashedID(id string, namespaces []string, part, salt int) string {
	key := strings.Join(namespaces, ",") + fmt.Sprint(part)
	if salt > 0 {
		key += fmt.Sprintf("#%d", salt)
	}
	h := sha256.Sum256([]byte(key))
	return strings.TrimRight(id[:min(len(id), maxIDLen-9)], "-") + "-" + hex.EncodeToString(h[:4])
}

// Write stores the export in the run directory: images.txt, digests.txt,
// shards.json, export.json, shard-ids.json and shards/<id>/{images,mapping}.txt.
func Write(dir artifacts.Dir, res Result) error {
	// Each file written as soon as it is formatted: held all at once, the
	// files of 100,000 tags were 30 MB more at the run's peak.
	if err := artifacts.WriteFile(dir.Path(contract.ImagesFile), artifacts.FormatImages(res.Items)); err != nil {
		return err
	}
	if err := artifacts.WriteFile(dir.Path(contract.DigestsFile), artifacts.FormatDigests(res.Items)); err != nil {
		return err
	}
	for id, its := range res.Shards {
		if err := artifacts.WriteFile(dir.Path(contract.ShardsDir, id, contract.ShardImages), artifacts.FormatImages(its)); err != nil {
			return err
		}
		if err := artifacts.WriteFile(dir.Path(contract.ShardsDir, id, contract.ShardMapping), artifacts.FormatMapping(its)); err != nil {
			return err
		}
	}
	return WriteIndex(dir, res.Plan, res.Summary())
}

// WriteIndex writes the run's index of its plan: the shard IDs (the Argo
// fan-out's parameter), export.json and shards.json.
func WriteIndex(dir artifacts.Dir, plan artifacts.Plan, sum Summary) error {
	ids := make([]string, 0, len(plan.Shards))
	for _, s := range plan.Shards {
		ids = append(ids, s.ID)
	}
	if err := artifacts.WriteJSON(dir.Path(contract.ShardIDsParam), ids); err != nil {
		return err
	}
	if err := artifacts.WriteJSON(dir.Path(contract.ExportFile), sum); err != nil {
		return err
	}
	return artifacts.WriteJSON(dir.Path(contract.ShardsFile), plan)
}
