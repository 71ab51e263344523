"""SnapMap: HR exports in, Eightfold feeds out."""
