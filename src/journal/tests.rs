//! Journal files by hand: line checksums, torn and corrupt lines, records checked against
//! the header, header differences, and the writer's round trip.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::file::{line, parse};
use super::*;

/// A result type with a field a later version might add, to show any serde type is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Score {
    mean: f64,
    per_image: Vec<u64>,
}

fn header() -> Header {
    let fp = |p: &str, h: char| Fingerprint { path: p.into(), sha256: h.to_string().repeat(64) };
    Header {
        journal: FORMAT.into(),
        version: VERSION,
        tool: "0.1.0".into(),
        inputs: Inputs { target: fp("t.onnx", 'a'), source: fp("s.onnx", 'b'), data: fp("d.npz", 'c') },
        settings: BTreeMap::from([("--kinds".to_string(), "W,B".to_string())]),
        swaps: vec![
            SwapId { pair: 0, key: "conv 1 W w1 <- w1".into() },
            SwapId { pair: 3, key: "conv 2 W w2 <- w2".into() },
        ],
        shard: None,
        args: vec!["t.onnx".into(), "s.onnx".into()],
    }
}

fn text(lines: &[String]) -> String {
    lines.iter().map(|l| line(l)).collect()
}

fn records() -> Vec<String> {
    vec![
        serde_json::to_string(&header()).unwrap(),
        r#"{"baseline":{"strategy":"shared","classes":2,"result":{"mean":0.9,"per_image":[1,2]}}}"#.into(),
        r#"{"swap":{"pair":3,"key":"conv 2 W w2 <- w2","result":{"mean":0.25,"per_image":[7]}}}"#.into(),
    ]
}

type Read = Option<Loaded<Score, Score>>;

fn read(bytes: &str) -> anyhow::Result<Read> {
    parse(bytes.as_bytes(), std::path::Path::new("x.journal"))
}

#[test]
fn a_line_is_the_sha256_of_its_json_then_the_json() {
    // sha256("{}") = 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
    assert_eq!(line("{}"), "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a {}\n");
}

#[test]
fn whole_journal_reads_back() {
    let t = text(&records());
    let l = read(&t).unwrap().unwrap();
    assert_eq!(l.header, header());
    assert_eq!(l.intact, t.len() as u64);
    assert!(l.torn.is_none());
    let b = l.known.baseline.unwrap();
    assert_eq!((b.strategy.as_str(), b.classes, b.result.mean, b.result.per_image), ("shared", 2, 0.9, vec![1, 2]));
    assert_eq!(l.known.swaps.len(), 1);
    assert_eq!(l.known.swaps[&3], Score { mean: 0.25, per_image: vec![7] });
}

#[test]
fn a_torn_last_line_is_dropped() {
    let whole = text(&records());
    let two = text(&records()[..2]);
    for cut in [1, 40, 70, whole.len() - two.len() - 1] {
        let torn = &whole[..two.len() + cut];
        let l = read(torn).unwrap().unwrap();
        assert_eq!(l.intact, two.len() as u64, "cut {cut}");
        assert!(l.torn.is_some());
        assert!(l.known.swaps.is_empty());
        assert!(l.known.baseline.is_some());
    }
    // Nothing whole, not even the header: nothing to resume.
    assert!(read(&whole[..30]).unwrap().is_none());
    assert!(read("").unwrap().is_none());
}

#[test]
fn a_bad_line_before_the_end_is_refused() {
    let mut lines: Vec<String> = text(&records()).lines().map(String::from).collect();
    // One digit changed inside the baseline's JSON: its checksum no longer holds.
    lines[1] = lines[1].replace("0.9", "0.8");
    let err = read(&(lines.join("\n") + "\n")).unwrap_err().to_string();
    assert!(err.contains("journal line 2 fails its checksum"), "{err}");
    // The same damage on the last whole line is refused too: only a line without its
    // newline is a torn write.
    let mut lines: Vec<String> = text(&records()).lines().map(String::from).collect();
    lines[2] = lines[2].replace("0.25", "0.35");
    let err = read(&(lines.join("\n") + "\n")).unwrap_err().to_string();
    assert!(err.contains("journal line 3 fails its checksum"), "{err}");
}

#[test]
fn records_must_match_the_header() {
    let mut r = records();
    r.push(r#"{"swap":{"pair":5,"key":"conv 9 W w9 <- w9","result":{"mean":0.1,"per_image":[]}}}"#.into());
    let err = read(&text(&r)).unwrap_err().to_string();
    assert!(err.contains("line 4 is swap 5 'conv 9 W w9 <- w9', which the header does not list"), "{err}");
    let mut r = records();
    r.push(r[2].clone());
    let err = read(&text(&r)).unwrap_err().to_string();
    assert!(err.contains("line 4 records swap 'conv 2 W w2 <- w2' a second time"), "{err}");
    let mut r = records();
    r.push(r[1].clone());
    assert!(read(&text(&r)).unwrap_err().to_string().contains("second baseline"));
    // A shard's journal holds its own swaps only.
    let mut h = header();
    h.shard = Some(ShardPart { index: 1, count: 2, pairs: vec![0] });
    let mut r = records();
    r[0] = serde_json::to_string(&h).unwrap();
    assert!(read(&text(&r)).unwrap_err().to_string().contains("not this shard's"));
}

#[test]
fn another_format_is_refused() {
    let mut h = serde_json::to_value(header()).unwrap();
    h["version"] = 2.into();
    let err = read(&text(&[h.to_string()])).unwrap_err().to_string();
    assert!(err.contains("v2; this tool reads"), "{err}");
    let err = read(&text(&["{\"something\":1}".to_string()])).unwrap_err().to_string();
    assert!(err.contains("not a journal of this tool"), "{err}");
}

#[test]
fn differences_name_what_differs() {
    let a = header();
    assert!(a.differences(&a, Scope::Shards).is_empty());
    let mut b = a.clone();
    b.inputs.source.sha256 = "d".repeat(64);
    b.inputs.source.path = "other.onnx".into();
    b.settings.insert("--kinds".into(), "W".into());
    b.settings.insert("--metric".into(), "dice".into());
    b.args.push("--tolerance".into());
    let d = a.differences(&b, Scope::Numbers);
    assert_eq!(
        d,
        vec![
            "source model: s.onnx (sha256 bbbbbbbbbbbb…) vs other.onnx (dddddddddddd…)".to_string(),
            "--kinds: W,B vs W".to_string(),
            "--metric: (unset) vs dice".to_string(),
        ]
    );
    // A path alone is not a difference; the command line is one for shards only.
    let mut c = a.clone();
    c.inputs.data.path = "elsewhere/d.npz".into();
    c.args.push("--format".into());
    assert!(a.differences(&c, Scope::Numbers).is_empty());
    assert_eq!(a.differences(&c, Scope::Shards).len(), 1);
}

#[test]
fn the_writer_appends_lines_that_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let w = Writer::create(&path, &header()).unwrap().unwrap();
    // A second writer is refused while the file exists.
    assert!(Writer::create(&path, &header()).unwrap().is_none());
    let base: Record<Score, Score> = Record::Baseline(BaselineRecord {
        strategy: "naive".into(),
        classes: 2,
        result: Score { mean: 0.1 + 0.2, per_image: vec![u64::MAX] },
    });
    w.append(&base).unwrap();
    let swap: Record<Score, Score> = Record::Swap(SwapRecord {
        pair: 0,
        key: "conv 1 W w1 <- w1".into(),
        result: Score { mean: 1e-300, per_image: vec![] },
    });
    w.append(&swap).unwrap();
    // NaN would be written as null and not read back: refused, nothing written.
    let nan: Record<Score, Score> = Record::Swap(SwapRecord {
        pair: 3,
        key: "conv 2 W w2 <- w2".into(),
        result: Score { mean: f64::NAN, per_image: vec![] },
    });
    assert!(w.append(&nan).is_err());
    // Another process (here: another handle) cannot lock it while the writer holds it.
    assert!(Writer::open_locked(&path).is_err());
    drop(w);
    let l: Loaded<Score, Score> = read_file(&path);
    assert_eq!(l.known.baseline.unwrap().result.mean, 0.1 + 0.2);
    assert_eq!(l.known.swaps[&0].mean, 1e-300);
    assert!(!l.known.swaps.contains_key(&3));
    // Resumed after a torn tail: the tail is cut, appending goes on after the last whole line.
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"0123 {\"sw").unwrap();
    let (f, bytes) = Writer::open_locked(&path).unwrap().unwrap();
    let l: Loaded<Score, Score> = parse(&bytes, &path).unwrap().unwrap();
    assert!(l.torn.is_some());
    let w = Writer::resume(f, &path, l.intact).unwrap();
    let ok: Record<Score, Score> = Record::Swap(SwapRecord {
        pair: 3,
        key: "conv 2 W w2 <- w2".into(),
        result: Score { mean: 0.5, per_image: vec![3] },
    });
    w.append(&ok).unwrap();
    drop(w);
    let l: Loaded<Score, Score> = read_file(&path);
    assert!(l.torn.is_none());
    assert_eq!(l.known.swaps.len(), 2);
    assert_eq!(l.known.swaps[&3].per_image, vec![3]);
}

fn read_file(path: &std::path::Path) -> Loaded<Score, Score> {
    super::read(path).unwrap().unwrap()
}

/// Shard `index` of `count` computing `pairs`, finished unless `undone` names one.
fn shard(index: usize, count: usize, pairs: &[usize], undone: Option<usize>) -> merge::Part<Score, Score> {
    let mut h = header();
    h.swaps = (0..6).map(|p| SwapId { pair: p, key: format!("conv {p} W") }).collect();
    h.shard = Some(ShardPart { index, count, pairs: pairs.to_vec() });
    let baseline =
        Some(BaselineRecord { strategy: "naive".into(), classes: 2, result: Score { mean: 0.9, per_image: vec![] } });
    let mut known = Known { baseline, ..Known::default() };
    for &p in pairs.iter().filter(|&&p| Some(p) != undone) {
        known.swaps.insert(p, Score { mean: p as f64, per_image: vec![] });
    }
    let loaded = Loaded { header: h, known, intact: 0, torn: None };
    merge::Part { origin: format!("shard{index}").into(), loaded }
}

fn join_err(parts: Vec<merge::Part<Score, Score>>) -> String {
    merge::join(parts).err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn merge_joins_a_whole_set() {
    let (h, known) =
        merge::join(vec![shard(2, 3, &[1, 4], None), shard(1, 3, &[0, 3], None), shard(3, 3, &[2, 5], None)]).unwrap();
    assert!(h.shard.is_none());
    assert_eq!(known.swaps.len(), 6);
    assert!((0..6).all(|p| known.swaps[&p].mean == p as f64));
    assert_eq!(known.baseline.unwrap().result.mean, 0.9);
}

#[test]
fn merge_refuses_what_is_not_one_whole_audit() {
    let e = join_err(vec![shard(1, 3, &[0, 3], None), shard(3, 3, &[2, 5], None)]);
    assert!(e.contains("shard(s) 2/3 missing (2 of 3 given)"), "{e}");
    let e = join_err(vec![shard(1, 2, &[0, 1, 2], None), shard(1, 2, &[0, 1, 2], None)]);
    assert!(e.contains("shard 1/2 is given twice: shard1 and shard1"), "{e}");
    let e = join_err(vec![shard(1, 2, &[0, 1, 2], Some(2)), shard(2, 2, &[3, 4, 5], None)]);
    assert!(e.contains("shard1 (shard 1/2) is unfinished: 1 of its 3 swaps missing, e.g. 'conv 2 W'"), "{e}");
    let e = join_err(vec![shard(1, 2, &[0, 1, 2], None), shard(2, 2, &[2, 3, 4, 5], None)]);
    assert!(e.contains("swap 'conv 2 W' is in shard1 and in shard2"), "{e}");
    let e = join_err(vec![shard(1, 2, &[0, 1], None), shard(2, 2, &[3, 4, 5], None)]);
    assert!(e.contains("swap 'conv 2 W' is in no shard"), "{e}");
    let e = join_err(vec![shard(1, 2, &[0, 1, 2], None), shard(1, 3, &[3, 4, 5], None)]);
    assert!(e.contains("does not belong with shard1") && e.contains("shards: 2 shards vs 3 shards"), "{e}");
    let mut other = shard(2, 2, &[3, 4, 5], None);
    other.loaded.header.inputs.target.sha256 = "e".repeat(64);
    let e = join_err(vec![shard(1, 2, &[0, 1, 2], None), other]);
    assert!(e.contains("target model: t.onnx (sha256 aaaaaaaaaaaa…)"), "{e}");
    let mut other = shard(2, 2, &[3, 4, 5], None);
    other.loaded.known.baseline.as_mut().unwrap().result.mean = 0.8;
    let e = join_err(vec![shard(1, 2, &[0, 1, 2], None), other]);
    assert!(e.contains("the baselines of shard1 and shard2 differ"), "{e}");
    let mut torn = shard(2, 2, &[3, 4, 5], None);
    torn.loaded.torn = Some("abc".into());
    assert!(join_err(vec![shard(1, 2, &[0, 1, 2], None), torn]).contains("torn line"));
    let mut plain = shard(1, 1, &[0, 1, 2, 3, 4, 5], None);
    plain.loaded.header.shard = None;
    assert!(join_err(vec![plain]).contains("not a shard result"));
}

#[test]
fn chunk_records_read_back_and_are_checked_against_the_header() {
    let chunk = |swaps: &str, base: &str| {
        format!(r#"{{"chunk":{{"first":4,"images":1,"classes":2,"baseline":{base},"swaps":{swaps}}}}}"#)
    };
    let mut lines = records();
    lines.push(chunk("[[0,[1,2,3,4,5,6]],[3,[0,0,0,1,1,1]]]", "[1,1,1,2,2,2]"));
    let l = read(&text(&lines)).unwrap().unwrap();
    assert_eq!(l.known.chunks.len(), 1);
    let c = &l.known.chunks[0];
    assert_eq!((c.first, c.images, c.values()), (4, 1, 6));
    // Found for the images it covers and a subset of its swaps, not for other images or a
    // swap it lacks.
    assert!(l.known.chunk(4, 1, &[0, 3]).is_some() && l.known.chunk(4, 1, &[]).is_some());
    assert!(l.known.chunk(4, 2, &[0]).is_none() && l.known.chunk(3, 1, &[0]).is_none());
    assert!(l.known.chunk(4, 1, &[1]).is_none());
    // Counts that do not fit [images, classes, 3], or a pair the header does not list: corrupt.
    for bad in
        [chunk("[[0,[1,2,3]]]", "[1,1,1,2,2,2]"), chunk("[]", "[1]"), chunk("[[7,[1,2,3,4,5,6]]]", "[1,1,1,2,2,2]")]
    {
        let mut lines = records();
        lines.push(bad.clone());
        lines.push(records()[2].replace("\"pair\":3", "\"pair\":0").replace("conv 2 W w2 <- w2", "conv 1 W w1 <- w1"));
        let e = read(&text(&lines)).unwrap_err().to_string();
        assert!(e.contains("line 4"), "{bad}: {e}");
    }
}
