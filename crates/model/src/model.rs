//! The CNN-LSTM autoencoder: Conv1d over time → LSTM encoder → bottleneck → LSTM decoder
//! → Linear reconstruction. Input `[batch, window, features + calendar]`, output
//! `[batch, window, features]`: the calendar inputs condition the decoder (a job at 03:00
//! is normal at 03:00) but are not reconstructed.

use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig, Lstm, LstmConfig, PaddingConfig1d};
use burn::prelude::*;
use burn::tensor::activation::{relu, tanh};

use crate::{Error, Result};

/// Hyperparameters; MODEL.md says why each default has its value.
#[derive(Config, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Steps per window (12 = one round of 12 samples, so any complete round can be
    /// scored on its own after a gap).
    #[config(default = 12)]
    pub window: usize,
    /// Conv1d output channels.
    #[config(default = 32)]
    pub channels: usize,
    /// Conv1d kernel size (steps).
    #[config(default = 3)]
    pub kernel: usize,
    /// Encoder LSTM hidden size.
    #[config(default = 32)]
    pub hidden: usize,
    /// Bottleneck width.
    #[config(default = 8)]
    pub bottleneck: usize,
    /// Decoder LSTM hidden size.
    #[config(default = 32)]
    pub decoder_hidden: usize,
    /// Epochs of the cold-start training.
    #[config(default = 12)]
    pub epochs: usize,
    /// Epochs of each hourly fine-tuning.
    #[config(default = 2)]
    pub fine_tune_epochs: usize,
    /// Adam learning rate.
    #[config(default = 2e-3)]
    pub lr: f64,
    /// Windows per optimiser step.
    #[config(default = 32)]
    pub batch_size: usize,
    /// Stride between training windows (scoring always uses stride 1).
    #[config(default = 2)]
    pub train_stride: usize,
    /// Most training windows per epoch at cold start (a random subset beyond that).
    #[config(default = 4000)]
    pub max_windows_per_epoch: usize,
    /// Features averaged into a step's error: 0 = all (plain normalised MSE), k = the k
    /// largest. MODEL.md compares the two (4 was better on seed 303).
    #[config(default = 4)]
    pub score_top_k: usize,
    /// Seed for initial weights and data order.
    #[config(default = 42)]
    pub seed: u64,
}

impl DetectorConfig {
    /// The defaults with some fields replaced by those of a JSON object, such as
    /// `{"hidden": 64, "lr": 0.001}` (the `config` object of `model.json` is accepted
    /// whole). An unknown field is an error: a misspelt name would otherwise keep its
    /// default without a word.
    pub fn with_overrides(json: &str) -> Result<Self> {
        let bad = |e: &dyn std::fmt::Display| Error::Invalid(format!("model config: {e}"));
        let over: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|e| bad(&e))?;
        let mut merged = match serde_json::to_value(Self::new()).map_err(|e| bad(&e))? {
            serde_json::Value::Object(m) => m,
            _ => return Err(bad(&"defaults are not an object")),
        };
        for (k, v) in over {
            if !merged.contains_key(&k) {
                let known: Vec<&str> = merged.keys().map(String::as_str).collect();
                return Err(bad(&format!(
                    "unknown field {k:?} (known: {})",
                    known.join(", ")
                )));
            }
            merged.insert(k, v);
        }
        let cfg: Self =
            serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| bad(&e))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Rejects values the model cannot be built or trained with, and sizes far beyond
    /// anything useful on a host (which would only exhaust memory). A window must fit in
    /// one held-out block of the cold start (10 rounds of 12 samples).
    pub fn validate(&self) -> Result<()> {
        let bounds = [
            ("window", self.window, 1, 120),
            ("channels", self.channels, 1, 1024),
            ("kernel", self.kernel, 1, 64),
            ("hidden", self.hidden, 1, 1024),
            ("bottleneck", self.bottleneck, 1, 1024),
            ("decoder_hidden", self.decoder_hidden, 1, 1024),
            ("epochs", self.epochs, 1, 1000),
            ("fine_tune_epochs", self.fine_tune_epochs, 1, 100),
            ("batch_size", self.batch_size, 1, 4096),
            ("train_stride", self.train_stride, 1, 1440),
            (
                "max_windows_per_epoch",
                self.max_windows_per_epoch,
                1,
                1_000_000,
            ),
        ];
        for (name, v, lo, hi) in bounds {
            if !(lo..=hi).contains(&v) {
                return Err(Error::Invalid(format!(
                    "model config: {name} must be between {lo} and {hi}, not {v}"
                )));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            return Err(Error::Invalid(format!(
                "model config: lr must be above 0 and at most 1, not {}",
                self.lr
            )));
        }
        Ok(())
    }

    /// A small configuration for tests (fast on 2 cores in debug builds).
    pub fn small() -> Self {
        DetectorConfig::new()
            .with_channels(8)
            .with_hidden(12)
            .with_bottleneck(6)
            .with_decoder_hidden(12)
            .with_epochs(16)
            .with_max_windows_per_epoch(3000)
    }

    /// Builds the model on `device`.
    pub fn init(&self, n_features: usize, n_time: usize, device: &Device) -> Autoencoder {
        let d_in = n_features + n_time;
        Autoencoder {
            conv: Conv1dConfig::new(d_in, self.channels, self.kernel)
                .with_padding(PaddingConfig1d::Same)
                .init(device),
            encoder: LstmConfig::new(self.channels, self.hidden, true).init(device),
            bottleneck: LinearConfig::new(self.hidden, self.bottleneck).init(device),
            decoder: LstmConfig::new(self.bottleneck + n_time, self.decoder_hidden, true)
                .init(device),
            output: LinearConfig::new(self.decoder_hidden, n_features).init(device),
            n_features,
            n_time,
        }
    }
}

/// The autoencoder.
#[derive(Module, Debug)]
pub struct Autoencoder {
    conv: Conv1d,
    encoder: Lstm,
    bottleneck: Linear,
    decoder: Lstm,
    output: Linear,
    n_features: usize,
    n_time: usize,
}

impl Autoencoder {
    /// Reconstructs the features of `x` (`[batch, window, features + time]`).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, window, _] = x.dims();
        let time = x.clone().narrow(2, self.n_features, self.n_time);
        // Conv1d wants [batch, channels, length]: convolve along time.
        let h = relu(self.conv.forward(x.swap_dims(1, 2))).swap_dims(1, 2);
        let (_, last) = crate::lstm::forward(&self.encoder, h, false);
        let z = tanh(self.bottleneck.forward(last));
        let z = z.unsqueeze_dim::<3>(1).repeat_dim(1, window);
        let (seq, last) = crate::lstm::forward(&self.decoder, Tensor::cat(vec![z, time], 2), true);
        self.output
            .forward(seq.unwrap_or_else(|| last.unsqueeze_dim(1)))
    }

    /// A copy for scoring, without gradient tracking (Burn's `Module::valid`, here so
    /// that callers need not depend on Burn).
    pub fn valid(&self) -> Self {
        burn::module::Module::valid(self)
    }

    /// Number of scored features.
    pub fn n_features(&self) -> usize {
        self.n_features
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_the_given_fields() {
        let cfg = DetectorConfig::with_overrides(r#"{"hidden": 64, "lr": 0.001}"#).unwrap();
        assert_eq!(cfg.hidden, 64);
        assert_eq!(cfg.lr, 0.001);
        assert_eq!(
            cfg.clone().with_hidden(32).with_lr(2e-3),
            DetectorConfig::new()
        );
        // The sidecar's own config object round-trips.
        let whole = serde_json::to_string(&DetectorConfig::small()).unwrap();
        assert_eq!(
            DetectorConfig::with_overrides(&whole).unwrap(),
            DetectorConfig::small()
        );
    }

    #[test]
    fn overrides_reject_typos_and_impossible_sizes() {
        let e = DetectorConfig::with_overrides(r#"{"hiden": 64}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field \"hiden\""), "{e}");
        let e = DetectorConfig::with_overrides(r#"{"window": 0}"#).unwrap_err();
        assert!(
            e.to_string().contains("window must be between 1 and 120"),
            "{e}"
        );
        for bad in [
            r#"{"hidden": 100000}"#,
            r#"{"epochs": 0}"#,
            r#"{"fine_tune_epochs": 0}"#,
            r#"{"channels": 4611686018427387904}"#,
        ] {
            assert!(DetectorConfig::with_overrides(bad).is_err(), "{bad}");
        }
        DetectorConfig::new().validate().unwrap();
        DetectorConfig::small().validate().unwrap();
        let e = DetectorConfig::with_overrides(r#"{"lr": -1}"#).unwrap_err();
        assert!(e.to_string().contains("lr must be"), "{e}");
        assert!(DetectorConfig::with_overrides(r#"{"hidden": "big"}"#).is_err());
        assert!(DetectorConfig::with_overrides("[1]").is_err());
    }

    #[test]
    fn shapes() {
        // Through `fresh_model`, under its seed lock: a model initialised here without
        // it drew from the device's shared generator while another test's seeded draws
        // were under way, and that test got other weights (1 run in ~6).
        let cfg = DetectorConfig::small();
        let m = crate::training::fresh_model(&cfg, 5, 4).valid();
        let x = Tensor::<3>::zeros([3, cfg.window, 9], &Device::flex());
        assert_eq!(m.forward(x).dims(), [3, cfg.window, 5]);
    }
}
