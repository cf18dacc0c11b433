"""Knowledge distillation of a wav2vec 2.0 CTC teacher into a student with fewer transformer layers.

``footprint compress distill --model TEACHER --layers N --out DIR`` (see ``footprint/commands/methods.py``).

Loss (per step, over the real frames of the batch; padded frames are masked out, unlike the paper's code which
averaged over padding too)::

    L = T^2 * KL(softmax(t / T) || softmax(s / T))          eq. (1) of the paper, T = temperature (default 1)
      + feature_penalty_weight * mean(conv_features^2)       wav2vec 2.0's feature penalty on the student's conv
      + ctc_weight * CTC(s, labels)                          off by default, as in the paper

The feature penalty weight defaults to 1.0: the paper's objective is L_distill + L_feature with no weight, and
its code added the two as they were.  (fairseq's wav2vec 2.0 *pre-training* weighs it 10; fine-tuning drops it.)
Its value is small next to the KD loss once the conv stack comes from the teacher; set 0 to drop it.

Student: the teacher's config with ``layers`` transformer layers (optionally with 3 conv layers turned into
max-pooling, ``student_arch="maxpool-conv4"``).  Init ``alternate`` (DistilBERT: teacher layers i*L/N, i.e.
every k-th layer when N divides L: 24 -> 12 takes 0, 2, ..., 22) or ``last`` (the last N layers).  Every tensor
that is not dropped is copied, by state-dict key and checked with ``strict=True``: conv stack, feature projection,
*positional conv* (weight-norm g and v), *the encoder's final layer norm* (both left random by the paper's code),
the masked-time embedding and the CTC head.

Optimiser as the paper: AdamW betas (0.9, 0.98), eps 1e-6, weight decay 0.01 on every parameter, lr 2.5e-5;
linear warm-up over ``warmup_epochs`` (2; at most a fifth of the run) then linear decay to 0 at the last step,
stepped per optimizer step (the paper's code stepped per epoch); seed 42; bf16 (or fp16 + loss scaling)
autocast on GPU (bf16 on CPU when asked).  Gradient-norm clipping at 5 only guards against spikes (0 turns it off).

Data: the training subset minus a validation split that is *not* the reported test set: by default whole
speakers held out of the training subset (``val_utterances``; dev-clean stays untouched for reporting), or
``val_data``.  ``data_fraction`` keeps a seeded random share of the remaining training audio (Figure 2).
The teacher saw the held-out speakers in its own training; the split is for model selection and the training
curve, the reported WER comes from the benchmark on dev-clean.

Speed: the teacher is frozen and there is no data augmentation, so its logits depend only on the audio.
They are computed once, in a first pass (sharded over ranks), and cached on disk as fp16 (64 bytes per 20 ms
frame, ~12 MB per hour of audio) keyed by teacher weights + audio content, so later epochs, resumed runs and
other students sharing ``cache_dir`` never run the teacher again (it would otherwise cost about as much as the
student's own forward and backward pass).

Robustness: checkpoints (student, optimizer, schedule position, loss accumulators) every ``checkpoint_minutes``,
every ``checkpoint_steps`` and at each epoch end, written atomically and loaded with ``weights_only=True``;
a rerun after any kill resumes at the saved step (and refuses a checkpoint made with other settings).
``max_minutes`` fits the step count to a wall-clock budget for the training loop (not data loading or the
teacher pass) after a few calibration steps (stored, so a resumed run keeps the same schedule).
Under ``torchrun --nproc-per-node K`` it runs DistributedDataParallel (gloo on CPU, nccl on GPU); every rank
takes every K-th batch of the same shuffled epoch, the KD loss is normalised by the frame count of all ranks
together, and at the end the ranks' parameters are compared.

Layout: ``config`` (settings, result), ``student`` (construction and layer init), ``loss`` (eq. 1 and the feature
penalty), ``data`` (splits), ``cache`` (teacher logits), ``step`` (one step, the log row), ``train`` (the run);
the loop itself is ``compress.training``.
"""
from compress.methods.distill.cache import TeacherCache
from compress.methods.distill.config import DistillConfig, DistillResult, config_key, student_name
from compress.methods.distill.data import DistillData, load_data, split_train_val
from compress.methods.distill.loss import (
    feature_penalty,
    feature_penalty_terms,
    frame_mask_from_lengths,
    kd_loss,
    kd_loss_terms,
)
from compress.methods.distill.step import DistillTask, lr_at
from compress.methods.distill.student import LAYER_PREFIX, build_student, param_digest, select_layers
from compress.methods.distill.train import WORK, distill, setup_dist
from core.train_log import TRAIN_LOG_COLUMNS as LOG_COLUMNS

__all__ = ["LAYER_PREFIX", "LOG_COLUMNS", "WORK", "DistillConfig", "DistillData", "DistillResult", "DistillTask",
           "TeacherCache", "build_student", "config_key", "distill", "feature_penalty", "feature_penalty_terms",
           "frame_mask_from_lengths", "kd_loss", "kd_loss_terms", "load_data", "lr_at", "param_digest",
           "select_layers", "setup_dist", "split_train_val", "student_name"]
