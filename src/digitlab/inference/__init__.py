"""Inference: a finished or exported model loaded, run on images, evaluated, calibrated, adapted, exported. One
module each:

load.py         a finished run's model from config.json and safetensors (raw or averaged weights)
classifier.py   running a model on images in batches: probabilities, one interface over a run, the shipped
                default model and an .onnx file run by onnxruntime (open_classifier)
calibration.py  a run's temperature and "not a digit" threshold, fitted on its validation split; ECE, reliability
onnx_model.py   the exported .onnx file's format: its names, its metadata read back, the export extra's check
export.py       `digitlab export`: a run's model written as a self-contained .onnx file, checked against PyTorch
decode.py       a person's image file decoded by Pillow, or refused with one line (ImageError)
mnist_like.py   a decoded picture brought to MNIST's form: ink found, strokes mended, 20x20, centred by mass
segment.py      a line of handwritten digits cut into candidate digits (marks, ruled lines, touching pairs)
answers.py      one image's answer and its "not a digit" verdict; what predict and read share (--show, shapes)
recognise.py    image files to answers: decoded, made MNIST-like, classified in batches, judged "not a digit"
read.py         the number in a picture: its line segmented, every candidate classified, the best reading chosen
negatives.py    generated non-digits as the model sees them (photographed, made MNIST-like), for training
adapt.py        `digitlab adapt`: a finished model fine-tuned on a person's samples, with MNIST replay
assessment.py   `digitlab evaluate`'s record: the accuracy's interval, per-class precision and recall, figures
"""
