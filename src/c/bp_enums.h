/* Every code shared by the kernels and the Python layer, defined once.
   _kernels.pyx exposes them as Python enums (cpdef enum in an extern
   block); bpcore's registries map names to them, so no string ever
   reaches a kernel. */
#ifndef BP_ENUMS_H
#define BP_ENUMS_H

/* Activations. The first eight take their derivative from the output
   (as scikit-learn does); GELU, SiLU, softplus and SELU need the
   pre-activation, which the forward pass then keeps (bp_act_needs_z). */
enum bp_activation {
    BP_IDENTITY = 0, BP_LOGISTIC = 1, BP_TANH = 2, BP_RELU = 3,
    BP_LEAKY_RELU = 4, BP_ELU = 5, BP_SOFTMAX = 6, BP_EXP = 7,
    BP_GELU = 8, BP_SILU = 9, BP_SOFTPLUS = 10, BP_SELU = 11
};
#define BP_N_ACTIVATIONS 12
static inline int bp_act_needs_z(int code) { return code >= BP_GELU; }

/* Losses, each with its canonical output where the delta simplifies. */
enum bp_loss {
    BP_SQUARED_ERROR = 0,   /* any output; 0.5 * mean of squares */
    BP_LOG_LOSS = 1,        /* softmax output, multiclass cross-entropy */
    BP_BINARY_LOG_LOSS = 2, /* logistic output, binary / multilabel */
    BP_POISSON = 3,         /* exp output, half Poisson deviance */
    BP_ABSOLUTE_ERROR = 4,  /* any output; mean of |out - y| */
    BP_HUBER = 5            /* any output; torch.nn.HuberLoss(delta) */
};

enum bp_optimizer {
    BP_SGD = 0, BP_ADAM = 1, BP_RMSPROP = 2, BP_ADAGRAD = 3,
    BP_NADAM = 4, BP_RPROP = 5
};

/* What a block of the flat parameter buffer holds (penalties, max-norm,
   decoupled weight decay apply to BP_WEIGHTS only). */
enum bp_block {
    BP_WEIGHTS = 0, BP_BIASES = 1, BP_BN_SCALE = 2, BP_BN_SHIFT = 3
};

enum bp_status {
    BP_OK = 0, BP_NONFINITE_LOSS = 1, BP_NONFINITE_PARAMS = 2, BP_INTERRUPTED = 3
};

#endif /* BP_ENUMS_H */
