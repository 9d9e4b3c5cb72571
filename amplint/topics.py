"""Topics ``amplint explain`` documents besides the codes (pure text)."""

from __future__ import annotations

CONFIGURATIONS = """\
configurations: how amplint decides where code runs in float16 or bfloat16

A script runs in many configurations. Every option it reads can take any value its type
allows, not only its default: argparse and click options, absl flags, attributes of a
configuration object read at run time (cfg.fp16, args.amp, self._cfg.train.dtype), and module
globals a configurator overrides (nanoGPT's exec(open('configurator.py').read())). A --dtype
string option can be float16 even when its default is float32; a flag is on or off; an option
with choices takes one of them. Tests amplint cannot fold (torch.cuda.is_available()) go
either way. Options a model registers on the parser it is handed (E2E.add_arguments(parser),
also through functions of other modules) have their defaults where its methods read
args.eunits and in the functions of other modules it hands args to.

For every statement amplint works out in which configurations it runs in reduced precision,
and why. A switch covers its own scope only:
  - process-wide: mxnet.contrib.amp / gluon_amp init(), a Keras global policy, apex
    amp.initialize(), torch.set_default_dtype(): what runs after it;
  - one model: net.cast(dtype), .half(), .bfloat16(), .to(dtype), and the wrappers DeepSpeed
    (its config's fp16/bf16, a dict or a JSON file), Lightning Trainer(precision=...),
    Hugging Face TrainingArguments(fp16=...), Accelerate Accelerator(mixed_precision=...):
    the model's class and the classes and builder functions it is made of, and its outputs;
  - a block: with torch.autocast(...) (every spelling, also through a name, partial() or
    a function parameter): the code in it, the functions it calls, the models called there;
  - one layer: its own dtype=.
The switch's dtype and on/off arguments are read in each configuration: net.cast(opt.dtype)
is float16 with --dtype float16; autocast(enabled=args.amp) is on with --amp; dtype =
'float16' if args.fp16 else 'float32' is float16 with --fp16. A value amplint cannot
determine (a parameter no call passes, an unknown function's result) turns nothing on.
Code on the other side of an if runs in the other configurations; a function runs where
its calls run, also when the script picks one of two functions, and each caller's way (one
passing args.type, another the default "lstm": both branches of if typ == "lstm" run);
modules of the project run
in what the modules importing them turn on (all of a module for a process-wide switch; the
classes a model is built from for the others), also a process-wide switch a helper of the
project runs with what the script passes (set_mixed_precision_policy(get_tf_dtype(FLAGS)),
a helper mapping --dtype fp16 to tf.float16 through a table). A call through cls/self also
runs the overrides in subclasses of other modules; cls.trainer.run(...) with a class
attribute trainer = Trainer runs Trainer.run; a model built by cls.build_model(args) is what
the overrides of build_model in the subclasses build. A switch comparing or casting to a
constant of another module of the project (if args.dtype == C.DTYPE_FP16:
model.cast(C.DTYPE_FP16)) reads its value there, when that module assigns it once.

What a top-level function returns is read in the function's own frame, and each call puts
in what it passes: model, preprocess_train, preprocess_val = create_model_and_transforms(name,
precision=args.precision) gives a model (element 0 only) float16 with --precision pure_fp16
when create_model casts it for that value, whatever other callers pass. 'fp16' in precision
is folded over the option's choices or the strings the function compares it with. A loss a
loss factory of the project builds (create_loss(args)) is a loss; a backward helper
(backward(total_loss, scaler)) is checked at each call, with its tests bound to what the call
passes; a top-level helper only evaluation code calls is evaluation code.

Inside a model with float16 weights (cast here or by another module), its layers' outputs
are float16, also of the parts given to its constructor: a loss, softmax, CTC module or
metric fed by them is a finding, also through a helper method's return (in a class another
module casts, what its forward runs). A model class chosen at run time and checked with isinstance/
issubclass against an interface is any class of the project deriving from it; a model passed
to another module's class or function carries its cast there, and so does a model returned by
a property or method of a project class (over the arguments that built the object; for a
parameter annotated with a project class, over the object's own configuration). Calls
through a star import of the project (from .utils import *) and modules returned by lazy
import helpers (nlp = try_import_gluonnlp()) are followed. Attention softmax, decoding
methods, another module's inference-only cast of a class this module trains, outputs of a model
another module casts only in evaluation code (an evaluate() function, no_grad), and
constructor defaults nothing in the project is seen passing are not findings.

A finding lists the configurations it holds in, by the options a user sets: "(with --dtype
float16)", "(with --amp --amp-dtype float16)", "(without --no-amp)"; nothing when it holds in
every configuration. JSON and SARIF carry them as "configurations". A finding in a module
that another one runs in reduced precision names it: "[imported by train.py, which enables
float16]", "(with train.py: --fp16)".

--assume-amp float16|bfloat16 treats every file as running in that precision everywhere.
--fix applies a fix to a finding of some configurations only when the fix changes nothing in
the others (a float32 cast of an output, an unscale_ of a GradScaler that may be off); any
other fix is not offered for it, and the finding says why.
"""

TOPICS = {"configurations": CONFIGURATIONS, "configuration": CONFIGURATIONS}
