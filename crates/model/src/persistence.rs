//! The model directory: Burn weights (burnpack) and a JSON sidecar, written atomically,
//! the previous model kept, the weights' SHA-256 verified before loading. The caller
//! holds the directory's lock (the detector locks the directory itself) for as long
//! as it uses a [`ModelDir`], so two detectors never work on the same model.
//!
//! Layout:
//! - `model.json`: the sidecar (format version, config, feature spec, scaler, residual
//!   scales, threshold and the normal round scores behind it, seen ports and names,
//!   replay and held-out raw steps, the weights file's name and SHA-256). Replacing it
//!   by rename is the single commit point of a save.
//! - `weights-<sha256 prefix>.bpk`: weights, immutable once written.
//! - `model.prev.json`: the sidecar before the last save (its weights file is kept).
//!
//! The detector locks the directory itself and refuses one another user could write
//! in (`portwatch-cli`'s `trust`): a planted model would decide what is normal.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Autoencoder, DetectorConfig};
use crate::training::train_device;
use crate::{Error, Result};
use portwatch_features::calendar::DAY_SLOTS;
use portwatch_features::{FeatureSpec, Scaler, Seen};

/// Version of the sidecar layout.
pub const FORMAT_VERSION: u32 = 3;
/// The sidecar's name.
pub const SIDECAR: &str = "model.json";
/// The previous sidecar's name.
pub const PREV_SIDECAR: &str = "model.prev.json";

/// Raw steps (feature counts followed by calendar inputs), row-major, one gap-free run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RawSegment {
    /// Rows of `features + calendar` values.
    pub rows: Vec<f32>,
    /// Highest round score in the segment over the threshold when it was scored (0 when
    /// unknown): replay keeps the hardest normal segments.
    #[serde(default)]
    pub hardness: f32,
}

/// The JSON sidecar.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sidecar {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Increments at every save (`batches.model_version`).
    pub model_version: u64,
    /// When the model was first trained.
    pub created_at: String,
    /// When it was last saved.
    pub updated_at: String,
    /// Hyperparameters (the model's shape comes from here).
    pub config: DetectorConfig,
    /// Feature names and version.
    pub feature_spec: FeatureSpec,
    /// Robust scaler fitted at cold start.
    pub scaler: Scaler,
    /// Per-feature residual scales on training windows, one row per half-hour of the
    /// day (`inference::residual_scale`).
    pub residual_scale: Vec<f32>,
    /// Current threshold (None while warming up).
    pub threshold: Option<f32>,
    /// Quantile of normal round scores the threshold sits at.
    pub threshold_quantile: f64,
    /// Factor applied to that quantile.
    pub threshold_margin: f32,
    /// Recent round scores of normal rounds, scored before the model trained on them.
    pub normal_scores: Vec<f32>,
    /// Usual spacing between round starts (µs), for gap detection.
    pub round_spacing_us: i64,
    /// Usual seconds between scanner samples.
    pub scan_interval: f64,
    /// Rounds the model has been trained on.
    pub rounds_trained: u64,
    /// True until `--min-history` of data existed.
    pub warming_up: bool,
    /// Listening ports and DNS names seen in normal history.
    pub seen: Seen,
    /// Replay sample of earlier normal steps.
    pub replay: Vec<RawSegment>,
    /// Held-out normal steps: the loss on them must not rise after fine-tuning.
    pub holdout: Vec<RawSegment>,
    /// The saved model's loss on `holdout` (None until measured): the next run's
    /// "before" without scoring the held-out windows again.
    #[serde(default)]
    pub holdout_loss: Option<f32>,
    /// Per-feature scales of the z-score baseline, when it is the scorer.
    #[serde(default)]
    pub zscore: Option<Vec<f32>>,
    /// Name of the weights file in the directory.
    pub weights_file: String,
    /// SHA-256 (hex) of the weights file.
    pub weights_sha256: String,
}

/// A model directory (which exists, and whose lock the caller holds).
#[derive(Debug)]
pub struct ModelDir {
    path: PathBuf,
}

impl ModelDir {
    /// The model directory at `dir`.
    pub fn new(dir: &Path) -> Self {
        ModelDir {
            path: dir.to_path_buf(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the current model, or None when the directory has none. Any damage
    /// (unparsable sidecar, missing or altered weights, another feature spec) is an
    /// error; nothing is written.
    ///
    /// A directory holding weights or a previous sidecar but no `model.json` is
    /// corrupt, not empty: retraining would replace (and clean away) a model someone
    /// may want back, so it is an error and nothing is touched.
    pub fn load(&self) -> Result<Option<(Sidecar, Autoencoder)>> {
        let loaded = load_from(&self.path, SIDECAR)?;
        if loaded.is_none()
            && let Some(orphan) = self.model_files().into_iter().next()
        {
            return Err(Error::CorruptModel {
                path: self.path.join(SIDECAR),
                reason: format!(
                    "missing, yet {orphan} is there (restore {SIDECAR}, e.g. from {PREV_SIDECAR}, or remove the directory to retrain)"
                ),
            });
        }
        Ok(loaded)
    }

    /// Names of the files a save leaves (weights, the previous sidecar).
    fn model_files(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(&self.path)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| {
                        n == PREV_SIDECAR || (n.starts_with("weights-") && n.ends_with(".bpk"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Saves atomically: weights to a new content-named file, the old sidecar to
    /// `model.prev.json`, then the new sidecar by rename. Bumps `model_version` and
    /// sets `updated_at` to `now` (the store's timestamp text).
    pub fn save(&self, model: &Autoencoder, sidecar: &mut Sidecar, now: &str) -> Result<()> {
        let bytes = model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| Error::Weights(e.to_string()))?;
        let bytes: &[u8] = &bytes;
        let sha = hex(&Sha256::digest(bytes));
        let name = format!("weights-{}.bpk", &sha[..16]);
        let wpath = self.path.join(&name);
        if !wpath.exists() {
            write_atomic(&wpath, bytes)?;
        }
        sidecar.weights_file = name;
        sidecar.weights_sha256 = sha;
        sidecar.model_version += 1;
        sidecar.updated_at = now.to_string();
        let json = serde_json::to_vec(sidecar)?;
        let cur = self.path.join(SIDECAR);
        if cur.exists() {
            let old = fs::read(&cur).map_err(|e| Error::io(&cur, e))?;
            write_atomic(&self.path.join(PREV_SIDECAR), &old)?;
        }
        write_atomic(&cur, &json)?;
        if let Ok(d) = File::open(&self.path) {
            let _ = d.sync_all();
        }
        self.clean_weights();
        Ok(())
    }

    /// Removes weights files neither sidecar refers to (best effort).
    fn clean_weights(&self) {
        /// The one field read: the rest (a week's seen-set is megabytes) is skipped
        /// unparsed rather than built into a `serde_json::Value`.
        #[derive(Deserialize)]
        struct Refers {
            weights_file: String,
        }
        let mut keep = Vec::new();
        for s in [SIDECAR, PREV_SIDECAR] {
            if let Ok(b) = fs::read(self.path.join(s))
                && let Ok(r) = serde_json::from_slice::<Refers>(&b)
            {
                keep.push(r.weights_file);
            }
        }
        if let Ok(rd) = fs::read_dir(&self.path) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with("weights-") && n.ends_with(".bpk") && !keep.contains(&n) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes a file by temp + fsync + rename, mode 0600.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic_mode(path, data, 0o600)
}

/// Writes a file by temp + fsync + rename, with `mode`: a reader sees the old file or
/// the new one, never half of one. The temp file is `NAME.EXT.tmpPID` beside it (which
/// node_exporter's textfile collector, reading `*.prom` only, also ignores).
pub fn write_atomic_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    // A leftover of a run killed with this pid goes first (unlinking a symlink never
    // follows it); the new file is created exclusively (O_EXCL: a link at the name
    // fails, it is never followed).
    let _ = fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(data)?;
            f.sync_all()
        })
        .map_err(|e| Error::io(&tmp, e))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if written.is_err() {
        // A full disk leaves no half-written temp file behind.
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Loads the model described by sidecar `name` in `dir` (None when the sidecar is absent).
pub fn load_from(dir: &Path, name: &str) -> Result<Option<(Sidecar, Autoencoder)>> {
    let spath = dir.join(name);
    let text = match fs::read(&spath) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&spath, e)),
    };
    let corrupt = |reason: String| Error::CorruptModel {
        path: spath.clone(),
        reason,
    };
    // Check the version before the full parse, so an old layout reads as a mismatch.
    // Only that field is kept: a whole `serde_json::Value` of a week's seen-set (tens
    // of thousands of client networks and peers) took 11 MiB more than the sidecar.
    #[derive(serde::Deserialize)]
    struct Version {
        format_version: Option<serde_json::Value>,
    }
    let version = serde_json::from_slice::<Version>(&text)
        .map_err(|e| corrupt(format!("sidecar is not valid JSON: {e}")))?
        .format_version
        .as_ref()
        .and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(FORMAT_VERSION)) {
        return Err(Error::ModelMismatch {
            path: spath,
            reason: format!("format version {version:?}, this detector reads {FORMAT_VERSION}"),
        });
    }
    let mut sc: Sidecar =
        serde_json::from_slice(&text).map_err(|e| corrupt(format!("sidecar: {e}")))?;
    // A hand-edited config would otherwise fail deep inside training or scoring.
    sc.config
        .validate()
        .map_err(|e| corrupt(format!("sidecar: {e}")))?;
    let current = FeatureSpec::current();
    if sc.feature_spec != current {
        return Err(Error::ModelMismatch {
            path: spath,
            reason: format!(
                "feature spec version {} ({} features), this detector computes version {} ({} features)",
                sc.feature_spec.version,
                sc.feature_spec.names.len(),
                current.version,
                current.names.len()
            ),
        });
    }
    let n = current.names.len();
    if sc.scaler.offset.len() != n
        || sc.scaler.median.len() != n
        || sc.scaler.scale.len() != n
        || sc.residual_scale.len() != DAY_SLOTS * n
    {
        return Err(corrupt(
            "scaler length does not match the feature spec".into(),
        ));
    }
    if sc.weights_file.contains('/') || sc.weights_file.is_empty() {
        return Err(corrupt(format!(
            "bad weights file name {:?}",
            sc.weights_file
        )));
    }
    let wpath = dir.join(&sc.weights_file);
    let bytes = fs::read(&wpath).map_err(|e| Error::CorruptModel {
        path: wpath.clone(),
        reason: format!("cannot read weights: {e}"),
    })?;
    let sha = hex(&Sha256::digest(&bytes));
    if sha != sc.weights_sha256 {
        return Err(Error::CorruptModel {
            path: wpath,
            reason: format!(
                "SHA-256 {} does not match the sidecar's {} (truncated or altered)",
                &sha[..16],
                sc.weights_sha256.get(..16).unwrap_or("")
            ),
        });
    }
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
        Error::CorruptModel {
            path: wpath.clone(),
            reason: e.to_string(),
        }
    })?;
    let device = train_device();
    let model = sc
        .config
        .init(n, current.time_inputs, &device)
        .try_load_record(record)
        .map_err(|e| Error::CorruptModel {
            path: wpath.clone(),
            reason: e.to_string(),
        })?;
    sc.seen.rebuild();
    Ok(Some((sc, model)))
}

/// A new sidecar for a freshly trained model made at `now` (weights fields are filled
/// by `save`).
pub fn new_sidecar(config: DetectorConfig, scaler: Scaler, now: &str) -> Sidecar {
    let now = now.to_string();
    Sidecar {
        format_version: FORMAT_VERSION,
        model_version: 0,
        created_at: now.clone(),
        updated_at: now,
        config,
        feature_spec: FeatureSpec::current(),
        scaler,
        residual_scale: Vec::new(),
        threshold: None,
        threshold_quantile: 1.0 - 1.0 / 1440.0,
        threshold_margin: 1.0,
        normal_scores: Vec::new(),
        round_spacing_us: 60_000_000,
        scan_interval: 5.0,
        rounds_trained: 0,
        warming_up: true,
        seen: Seen::default(),
        replay: Vec::new(),
        holdout: Vec::new(),
        holdout_loss: None,
        zscore: None,
        weights_file: String::new(),
        weights_sha256: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::{ModelScorer, Scorer};
    use crate::training::{Series, fresh_model};
    use portwatch_features::{N_FEATURES, N_TIME};

    const NOW: &str = "2026-01-05T00:00:00.000000Z";

    fn setup() -> (tempfile::TempDir, Autoencoder, Sidecar, Series) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DetectorConfig::small();
        let model = fresh_model(&cfg, N_FEATURES, N_TIME);
        let scaler = Scaler {
            offset: vec![1.0; N_FEATURES],
            median: vec![0.0; N_FEATURES],
            scale: vec![1.0; N_FEATURES],
        };
        let mut sc = new_sidecar(cfg.clone(), scaler, NOW);
        sc.residual_scale = vec![0.5; DAY_SLOTS * N_FEATURES];
        sc.threshold = Some(3.0);
        let w = N_FEATURES + N_TIME;
        let mut s = Series::new(N_FEATURES, w);
        s.segments.push(
            (0..30 * w)
                .map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0)
                .collect(),
        );
        (dir, model, sc, s)
    }

    fn scores(m: &Autoencoder, sc: &Sidecar, s: &Series) -> Vec<Option<f32>> {
        let v = m.valid();
        ModelScorer {
            model: &v,
            residual_scale: &sc.residual_scale,
            window: sc.config.window,
            top_k: sc.config.score_top_k,
        }
        .score_steps(s)
        .unwrap()
        .score
    }

    #[test]
    fn save_load_gives_identical_scores() {
        let (dir, model, mut sc, s) = setup();
        let md = ModelDir::new(dir.path());
        md.save(&model, &mut sc, NOW).unwrap();
        let (sc2, m2) = md.load().unwrap().unwrap();
        assert_eq!(sc2.model_version, 1);
        assert_eq!(scores(&model, &sc, &s), scores(&m2, &sc2, &s));
        // A second save keeps the previous sidecar and its weights.
        md.save(&m2, &mut sc.clone(), NOW).unwrap();
        assert!(dir.path().join(PREV_SIDECAR).exists());
        let (prev, _) = load_from(dir.path(), PREV_SIDECAR).unwrap().unwrap();
        assert_eq!(prev.model_version, 1);
    }

    /// Weights files are kept while a sidecar (the current or the previous) names them.
    #[test]
    fn a_save_removes_the_weights_no_sidecar_names() {
        let (dir, _, mut sc, _) = setup();
        let md = ModelDir::new(dir.path());
        let cfg = DetectorConfig::small();
        let mut named = Vec::new();
        for _ in 0..3 {
            md.save(&fresh_model(&cfg, N_FEATURES, N_TIME), &mut sc, NOW)
                .unwrap();
            named.push(sc.weights_file.clone());
        }
        let mut files: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".bpk"))
            .collect();
        files.sort();
        let mut kept = named[1..].to_vec();
        kept.sort();
        assert_ne!(named[0], named[1], "three models, three weights files");
        assert_eq!(files, kept);
    }

    #[test]
    fn corrupt_weights_are_refused_and_left_alone() {
        let (dir, model, mut sc, _) = setup();
        let md = ModelDir::new(dir.path());
        md.save(&model, &mut sc, NOW).unwrap();
        let w = dir.path().join(&sc.weights_file);
        let mut bytes = fs::read(&w).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        fs::write(&w, &bytes).unwrap();
        let side = fs::read(dir.path().join(SIDECAR)).unwrap();
        let err = md.load().unwrap_err();
        assert!(matches!(err, Error::CorruptModel { .. }), "{err}");
        assert!(err.to_string().contains("SHA-256"), "{err}");
        assert_eq!(fs::read(&w).unwrap(), bytes, "weights untouched");
        assert_eq!(
            fs::read(dir.path().join(SIDECAR)).unwrap(),
            side,
            "sidecar untouched"
        );
        // Truncated, and garbage sidecar.
        fs::write(&w, &bytes[..10]).unwrap();
        assert!(matches!(md.load().unwrap_err(), Error::CorruptModel { .. }));
        fs::write(dir.path().join(SIDECAR), b"{\"format_version\": 1, \"oops").unwrap();
        assert!(matches!(md.load().unwrap_err(), Error::CorruptModel { .. }));
    }

    #[test]
    fn mismatched_feature_spec_is_refused() {
        let (dir, model, mut sc, _) = setup();
        let md = ModelDir::new(dir.path());
        md.save(&model, &mut sc, NOW).unwrap();
        let p = dir.path().join(SIDECAR);
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        v["feature_spec"]["version"] = serde_json::json!(99);
        fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        let err = md.load().unwrap_err();
        assert!(matches!(err, Error::ModelMismatch { .. }), "{err}");
        v["format_version"] = serde_json::json!(7);
        fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(
            md.load().unwrap_err(),
            Error::ModelMismatch { .. }
        ));
    }
}
