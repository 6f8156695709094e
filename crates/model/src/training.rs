//! Windows over step series, and the hand-written training loop (forward → backward →
//! `GradientsParams::from_grads` → `optim.step`), seeded: `device.seed` for the initial
//! weights, our own ChaCha RNG for the window order. Windows are shuffled; the steps
//! inside a window never are.

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::model::{Autoencoder, DetectorConfig};
use crate::{Error, Result};

/// Scaled step rows in gap-free segments; each row is `features + calendar` long.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Row width (features + calendar inputs).
    pub width: usize,
    /// Features per row that are reconstructed.
    pub n_features: usize,
    /// Row-major steps of each segment.
    pub segments: Vec<Vec<f32>>,
}

/// A window: (segment, first step).
pub type WindowRef = (usize, usize);

impl Series {
    /// An empty series.
    pub fn new(n_features: usize, width: usize) -> Self {
        Series {
            width,
            n_features,
            segments: Vec::new(),
        }
    }

    /// Steps in segment `s`.
    pub fn len_of(&self, s: usize) -> usize {
        self.segments
            .get(s)
            .map_or(0, |v| v.len() / self.width.max(1))
    }

    /// Total steps.
    pub fn total_steps(&self) -> usize {
        (0..self.segments.len()).map(|s| self.len_of(s)).sum()
    }

    /// Every window of `window` steps at `stride`, never across segments.
    pub fn windows(&self, window: usize, stride: usize) -> Vec<WindowRef> {
        let mut out = Vec::new();
        for s in 0..self.segments.len() {
            let n = self.len_of(s);
            if n < window {
                continue;
            }
            let mut i = 0;
            while i + window <= n {
                out.push((s, i));
                i += stride.max(1);
            }
        }
        out
    }

    /// Copies windows into one `[len, window, width]` buffer.
    pub fn gather(&self, refs: &[WindowRef], window: usize) -> Vec<f32> {
        let w = self.width;
        let mut buf = Vec::with_capacity(refs.len() * window * w);
        for &(s, i) in refs {
            buf.extend_from_slice(&self.segments[s][i * w..(i + window) * w]);
        }
        buf
    }

    /// The tensor of some windows on `device`.
    pub fn tensor(&self, refs: &[WindowRef], window: usize, device: &Device) -> Tensor<3> {
        let data = TensorData::new(self.gather(refs, window), [refs.len(), window, self.width]);
        Tensor::from_data(data, device)
    }
}

/// The device training runs on (Flex CPU with autodiff).
pub fn train_device() -> Device {
    Device::flex().autodiff()
}

/// The device inference runs on.
pub fn infer_device() -> Device {
    Device::flex()
}

/// A fresh model, seeded, on the training device.
pub fn fresh_model(cfg: &DetectorConfig, n_features: usize, n_time: usize) -> Autoencoder {
    let device = train_device();
    // The device's generator is shared by every thread: seeding it and drawing the
    // initial weights must be one step, or two models built at once (tests running in
    // parallel) take each other's draws and neither is the seed's.
    let _one_at_a_time = SEEDED_INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    device.seed(cfg.seed);
    let model = cfg.init(n_features, n_time, &device);
    // Burn draws a parameter's initial values lazily, at its first use: without this,
    // a test's first forward pass ran after the lock was gone, interleaved its draws
    // with another test's, and its weights were not the seed's (a residual-scale test
    // failed 1 run in ~10 on a busy machine). One forward pass here draws them all, in
    // the order the first real one would.
    let probe = Tensor::<3>::zeros([1, 1, n_features + n_time], &device);
    let _ = model.forward(probe).into_data();
    model
}

/// Held while a fresh model is seeded and initialised.
pub(crate) static SEEDED_INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Trains `model` (on the training device) for `epochs` over `windows` (at most
/// `max_per_epoch` of them, a fresh random subset each epoch). Returns the model and the
/// mean loss of the last epoch. `on_epoch` hears each epoch's number (from 1) and mean
/// loss as it ends (a progress bar).
#[allow(clippy::too_many_arguments)] // each is one knob of one training run
pub fn train(
    mut model: Autoencoder,
    series: &Series,
    windows: &[WindowRef],
    cfg: &DetectorConfig,
    epochs: usize,
    max_per_epoch: usize,
    seed: u64,
    on_epoch: &mut dyn FnMut(usize, f32),
) -> Result<(Autoencoder, f32)> {
    if windows.is_empty() || epochs == 0 {
        return Ok((model, f32::NAN));
    }
    let device = train_device();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut optim = AdamConfig::new().init();
    let mut order: Vec<WindowRef> = windows.to_vec();
    let mut last = f32::NAN;
    for epoch in 1..=epochs {
        order.shuffle(&mut rng);
        let take = order.len().min(max_per_epoch.max(1));
        let mut sum = 0.0f64;
        let mut n = 0usize;
        for chunk in order[..take].chunks(cfg.batch_size.max(1)) {
            let x = series.tensor(chunk, cfg.window, &device);
            let target = x.clone().narrow(2, 0, series.n_features);
            let out = model.forward(x);
            let loss = (out - target).powi_scalar(2).mean();
            let value: f32 = loss
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| Error::Invalid(format!("loss: {e:?}")))?
                .first()
                .copied()
                .unwrap_or(f32::NAN);
            if !value.is_finite() {
                return Err(Error::Invalid(
                    "training diverged (loss is not finite)".into(),
                ));
            }
            sum += f64::from(value) * chunk.len() as f64;
            n += chunk.len();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cfg.lr, model, grads);
        }
        last = (sum / n.max(1) as f64) as f32;
        on_epoch(epoch, last);
    }
    Ok((model, last))
}
