//! Burn's [`Lstm`] run with its four gates as one: the same parameters and the same
//! arithmetic, in a third of the tensor operations.
//!
//! Burn's own forward pass computes each gate with two `Linear`s at every step (eight
//! small matrix products, four adds, three sigmoids and two tanhs a step) and copies
//! the whole output tensor to store each step's hidden state. On this model's sizes
//! (batches of 32, hidden widths of 32) a step's arithmetic is a few microseconds and
//! the cost is in the operations themselves — allocations and autodiff graph nodes —
//! so the cold start's training spent most of its time there. Here:
//!
//! - the input side of all four gates, at every step, is one matrix product done before
//!   the loop (the input does not depend on the hidden state);
//! - the hidden side of all four gates is one matrix product a step;
//! - the candidate cell's `tanh(a)` is `2·σ(2a) − 1`, so one sigmoid covers the four
//!   gates: the factor 2 is folded into the cell gate's weights once per forward pass,
//!   not per step (glibc's `tanhf` also costs several `expf`s);
//! - the hidden states are stacked once at the end, and only when the caller wants them.
//!
//! The module keeps Burn's layout, so weights saved before load unchanged, and its
//! parameters are first read in the order Burn's forward reads them, so a seeded model
//! draws the same initial weights (Burn initialises a parameter lazily, at first read).
//! Results equal Burn's up to float rounding (a test compares them).

use burn::nn::activation::Activation;
use burn::nn::{GateController, Lstm};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// The final hidden state of `lstm` over `x` (`[batch, steps, input]`), and with
/// `sequence` every step's hidden state (`[batch, steps, hidden]`).
pub fn forward(lstm: &Lstm, x: Tensor<3>, sequence: bool) -> (Option<Tensor<3>>, Tensor<2>) {
    let Some(forget) = plain_forget_gate(lstm) else {
        // Not the plain LSTM this module fuses: Burn's own pass.
        let (seq, state) = lstm.forward(x, None);
        return (sequence.then_some(seq), state.hidden);
    };
    let [batch, steps, d_in] = x.dims();
    let h = lstm.d_hidden;
    let device = x.device();
    // Gate order in the fused width: input, forget, output (sigmoids), then the cell
    // candidate (scaled by 2, see the module's doc).
    let gates = [&lstm.input_gate, forget, &lstm.output_gate, &lstm.cell_gate];
    let mut w_in = Vec::with_capacity(4);
    let mut w_hidden = Vec::with_capacity(4);
    let mut bias = Vec::with_capacity(4);
    for (i, gate) in gates.into_iter().enumerate() {
        let scale = if i == 3 { 2.0 } else { 1.0 };
        let (wi, bi) = weights(gate, true, scale);
        let (wh, bh) = weights(gate, false, scale);
        w_in.push(wi);
        w_hidden.push(wh);
        bias.push(match (bi, bh) {
            (Some(bi), Some(bh)) => Some(bi + bh),
            (b, None) | (None, b) => b,
        });
    }
    let w_in = Tensor::cat(w_in, 1);
    let w_hidden = Tensor::cat(w_hidden, 1);
    // Time-major, so that each step's slice is contiguous rows.
    let mut projected = x
        .swap_dims(0, 1)
        .reshape([steps * batch, d_in])
        .matmul(w_in);
    if bias.iter().any(Option::is_some) {
        let bias = bias
            .into_iter()
            .map(|b| b.unwrap_or_else(|| Tensor::zeros([h], &device)))
            .collect();
        projected = projected + Tensor::cat(bias, 0).unsqueeze_dim::<2>(0);
    }
    let projected = projected.reshape([steps, batch, 4 * h]);

    let mut cell = Tensor::<2>::zeros([batch, h], &device);
    let mut hidden = Tensor::<2>::zeros([batch, h], &device);
    let mut out = Vec::with_capacity(if sequence { steps } else { 0 });
    for t in 0..steps {
        let pre = projected.clone().narrow(0, t, 1).reshape([batch, 4 * h])
            + hidden.matmul(w_hidden.clone());
        let act = sigmoid(pre);
        let input = act.clone().narrow(1, 0, h);
        let forget = act.clone().narrow(1, h, h);
        let output = act.clone().narrow(1, 2 * h, h);
        let candidate = act.narrow(1, 3 * h, h).mul_scalar(2.0).sub_scalar(1.0);
        cell = forget * cell + input * candidate;
        hidden = output * tanh_by_sigmoid(cell.clone());
        if sequence {
            out.push(hidden.clone());
        }
    }
    let seq = sequence.then(|| Tensor::stack(out, 1));
    (seq, hidden)
}

/// `tanh(x)` as `2·σ(2x) − 1`: four light operations cost less than glibc's `tanhf` on
/// these sizes (the bench in `benches/train.rs` measures it).
fn tanh_by_sigmoid(x: Tensor<2>) -> Tensor<2> {
    sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0)
}

/// The forget gate, when `lstm` is the plain LSTM (sigmoid gates, tanh cell and
/// output, its own forget gate, no clipping, batch first, forward in time) — the only
/// kind this model builds.
fn plain_forget_gate(lstm: &Lstm) -> Option<&GateController> {
    let plain = matches!(lstm.gate_activation, Activation::Sigmoid(_))
        && matches!(lstm.cell_activation, Activation::Tanh(_))
        && matches!(lstm.hidden_activation, Activation::Tanh(_))
        && !lstm.input_forget
        && lstm.clip.is_none()
        && lstm.batch_first
        && !lstm.reverse;
    if plain {
        lstm.forget_gate.as_ref()
    } else {
        None
    }
}

/// One side's weight (`[d, hidden]`) and bias of a gate, times `scale`. Weight before
/// bias, as Burn's `Linear` reads them.
fn weights(gate: &GateController, input_side: bool, scale: f64) -> (Tensor<2>, Option<Tensor<1>>) {
    let linear = if input_side {
        &gate.input_transform
    } else {
        &gate.hidden_transform
    };
    let w = linear.weight.val();
    let b = linear.bias.as_ref().map(|b| b.val());
    if scale == 1.0 {
        (w, b)
    } else {
        (w.mul_scalar(scale), b.map(|b| b.mul_scalar(scale)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LstmConfig;

    fn close(a: Tensor<3>, b: Tensor<3>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// Holds the lock under which models are seeded: the device's generator is shared,
    /// and a test drawing from it unlocked takes another test's seeded draws.
    fn seeding() -> std::sync::MutexGuard<'static, ()> {
        crate::training::SEEDED_INIT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn equals_burns_lstm() {
        let _seeding = seeding();
        let device = Device::flex();
        device.seed(7);
        for bias in [true, false] {
            let lstm = LstmConfig::new(5, 6, bias).init(&device);
            let x = Tensor::<3>::random(
                [3, 4, 5],
                burn::tensor::Distribution::Normal(0.0, 2.0),
                &device,
            );
            let (want_seq, want) = lstm.forward(x.clone(), None);
            let (seq, hidden) = forward(&lstm, x.clone(), true);
            let seq = seq.expect("asked for the sequence");
            assert_eq!(seq.dims(), [3, 4, 6]);
            assert!(close(seq, want_seq) < 1e-5);
            assert!(
                close(
                    hidden.clone().unsqueeze_dim(1),
                    want.hidden.unsqueeze_dim(1)
                ) < 1e-5
            );
            let (none, last) = forward(&lstm, x, false);
            assert!(none.is_none());
            assert!(close(last.unsqueeze_dim(1), hidden.unsqueeze_dim(1)) == 0.0);
        }
    }

    #[test]
    fn gradients_equal_burns() {
        let _seeding = seeding();
        let device = Device::flex().autodiff();
        device.seed(11);
        let lstm = LstmConfig::new(4, 3, true).init(&device);
        let x = Tensor::<3>::random(
            [2, 5, 4],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let grad = |loss: Tensor<1>| {
            let g = loss.backward();
            let w = &lstm.cell_gate.hidden_transform.weight;
            w.grad(&g).expect("a gradient").into_data()
        };
        let (seq, _) = lstm.forward(x.clone(), None);
        let want = grad(seq.powi_scalar(2).sum());
        let (seq, _) = forward(&lstm, x, true);
        let got = grad(seq.expect("sequence").powi_scalar(2).sum());
        let (want, got) = (
            want.try_to_vec::<f32>().expect("f32"),
            got.try_to_vec::<f32>().expect("f32"),
        );
        assert_eq!(want.len(), got.len());
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() < 1e-5, "{want:?} vs {got:?}");
        }
    }

    #[test]
    fn a_seeded_lstm_draws_the_same_weights() {
        // Parameters are drawn at their first read: read first by this forward pass or
        // by Burn's, the same seed must give the same weights.
        let seeded = |ours: bool| {
            let _seeding = seeding();
            let device = Device::flex();
            device.seed(5);
            let lstm = LstmConfig::new(3, 4, true).init(&device);
            let x = Tensor::<3>::ones([1, 2, 3], &device);
            if ours {
                forward(&lstm, x, false).1
            } else {
                lstm.forward(x, None).1.hidden
            }
        };
        let diff: f32 = (seeded(true) - seeded(false)).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
    }
}
